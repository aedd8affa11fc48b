"""TLS material for servers and clients: mutual TLS everywhere, the testbed root as the one anchor."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import grpc

KEEPALIVE = [("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_permit_without_calls", 0)]
# A peer that was down is tried again within a second, not after gRPC's default of up to 120 s:
# outboxes must drain soon after a killed node comes back.
RECONNECT = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
             ("grpc.max_reconnect_backoff_ms", 1000)]


@dataclass(frozen=True)
class ClientCert:
    """A client's certificate chain and key files, and the trust anchor it checks servers with."""

    cert: Path
    key: Path
    trust: Path

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials presenting this certificate."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.trust.read_bytes(),
            private_key=self.key.read_bytes(),
            certificate_chain=self.cert.read_bytes(),
        )


def server_credentials(cert: Path, key: Path, trust: Path) -> grpc.ServerCredentials:
    """Server credentials that require and verify a client certificate."""
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=trust.read_bytes(),
        require_client_auth=True,
    )


def channel_options(host_name: str) -> list[tuple[str, object]]:
    """Options that make the client check the server certificate against its DNS name."""
    return [("grpc.ssl_target_name_override", host_name), ("grpc.default_authority", host_name), *KEEPALIVE, *RECONNECT]


def pinned(client: ClientCert, domain: str) -> ClientCert:
    """The same certificate, trusting only the issuing CA of the server's trust domain (next to the root in the
    PKI folder): a server certificate of any other domain fails the handshake, whatever name it carries."""
    domain_ca = client.trust.parent.parent / "ca" / domain / "ca.pem"
    return replace(client, trust=domain_ca) if domain_ca.exists() else client


def aio_channel(address: str, host_name: str, client: ClientCert, interceptors=None) -> grpc.aio.Channel:
    """An asyncio mTLS channel to a node."""
    return grpc.aio.secure_channel(address, client.credentials(), options=channel_options(host_name),
                                   interceptors=interceptors)


def sync_channel(address: str, host_name: str, client: ClientCert) -> grpc.Channel:
    """A blocking mTLS channel to a node."""
    return grpc.secure_channel(address, client.credentials(), options=channel_options(host_name))
