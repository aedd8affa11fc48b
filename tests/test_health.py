"""Health checking as a stock client uses it: Watch streams the status, List names every service, Check of an
unknown service names the rule; on a node and on a CS's search process."""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import common_pb2, national_pb2_grpc
from testbed.client import channel, monitor_cert, node_cert


@pytest.mark.parametrize("end", ["kizon", "search"])
def test_watch_list_and_check(network, end):
    """Watch answers SERVING at once (and keeps the stream open), List names the node's services, Check of a name
    the node does not serve is NOT_FOUND under the health rule."""
    cs = network.topology.find("cs", "142140")
    node = network.topology.find("kizon", "142140") if end == "kizon" else cs.search_end()
    with channel(node, monitor_cert(network.pki, node.kind), verify_server=False) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        listed = stub.List(health_pb2.HealthListRequest(), timeout=10).statuses
        assert listed[""].status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(health_pb2.HealthCheckRequest(service="x" * 90), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "health rule" in caught.value.details()


def test_a_refusal_repeating_a_long_item_still_reaches_the_client(network):
    """A node-facing method refusing a 2,500-character 住民票コード (every character three bytes, nine when
    percent-encoded) answers with the rule, its message cut, instead of a stream the client drops."""
    national = network.topology.find("national")
    with channel(national, node_cert(network.pki, "cs-142140")) as ch:
        with pytest.raises(grpc.RpcError) as caught:
            national_pb2_grpc.NationalServerStub(ch).GetIdentity(common_pb2.ResidentKey(resident_code="長" * 2500),
                                                                 timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert "住民票コード rule" in caught.value.details() and "characters)" in caught.value.details()
