"""Health checking as stock clients use it (grpc.health.v1): Check, Watch and List, each refusal naming its rule."""
from __future__ import annotations

from grpc_health.v1 import health, health_pb2

from nodes.reasons import platform as R

NAME_SHOWN = 64  # characters of a caller's service name repeated in a refusal


class HealthServicer(health.aio.HealthServicer):
    """grpc_health's servicer, with List (which it leaves unimplemented) and a Check refusal that names the rule."""

    async def Check(self, request, context):
        """The serving status of one service of this node ("" for the node as a whole)."""
        status = self._server_status.get(request.service)
        if status is None:
            raise R.HEALTH_SERVICE_UNKNOWN(f"health rule: {request.service[:NAME_SHOWN]!r} is not a service of this node "
                                            "(ask for \"\" or one of those List names)")
        return health_pb2.HealthCheckResponse(status=status)

    async def List(self, request, context):
        """The serving status of every service of this node."""
        return health_pb2.HealthListResponse(statuses={
            name: health_pb2.HealthCheckResponse(status=status) for name, status in self._server_status.items()})
