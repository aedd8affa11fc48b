"""The 名簿調製プログラム's side of the 裁判員候補者名簿 (docs/jury.md): it asks a municipality's kizon for the year's
list over the 住基GW service, with the municipality's jury certificate (office-<m>-jury, spiffe://testbed.jp/lg/<m>/
office/jury), the one identity kizon's policy lets ask."""
from __future__ import annotations

from nodes.tls import ClientCert
from protos import gateway_pb2, gateway_pb2_grpc
from testbed.client import channel, named_cert


def jury_cert(network, municipality: str) -> ClientCert:
    """The client certificate of a municipality's 名簿調製プログラム."""
    return named_cert(network.pki, f"office-{municipality}-jury")


def draw_jury_list(network, municipality: str, year: int, count: int, reference: str, *,
                   cert: ClientCert | None = None, timeout: float = 60) -> gateway_pb2.JuryList:
    """The municipality's 裁判員候補者名簿 for year: count people drawn by lot under the court's allotment notice
    reference. Asking again with the same year, count and reference answers the same list (so a lost answer is
    asked for again with the same request); cert stands in for the jury certificate (a test of who may ask)."""
    kizon = network.topology.find("kizon", municipality)
    with channel(kizon, cert or jury_cert(network, municipality)) as ch:
        return gateway_pb2_grpc.KizonGatewayStub(ch).DrawJuryCandidates(
            gateway_pb2.JuryListRequest(year=year, count=count, allotment_reference=reference), timeout=timeout)
