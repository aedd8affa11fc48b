"""The bare mTLS echo: the benchmark's yardstick, a gRPC server with client certificates required
and nothing else (no authorization, audit or store). ``python -m nodes.echo --pki-dir D --cert-of NODE --address A``."""
from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc

from certs.pki import PKI
from nodes.tls import server_credentials
from protos import common_pb2, common_pb2_grpc


class Echo(common_pb2_grpc.EchoServicer):
    """Answers with the payload it was sent."""

    async def Echo(self, request, context):
        """The payload back."""
        return common_pb2.EchoReply(payload=request.payload)


async def serve(pki: PKI, cert_of: str, address: str) -> None:
    """Serve the echo with a node's server certificate until SIGTERM."""
    server = grpc.aio.server()
    common_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    cert, key = pki.node_files(cert_of, "server")
    server.add_secure_port(address, server_credentials(cert, key, pki.trust_bundle))
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m nodes.echo", description=__doc__)
    parser.add_argument("--pki-dir", type=Path, required=True)
    parser.add_argument("--cert-of", required=True, help="the node whose server certificate the echo presents")
    parser.add_argument("--address", required=True)
    args = parser.parse_args()
    asyncio.run(serve(PKI(args.pki_dir), args.cert_of, args.address))


if __name__ == "__main__":
    main()
