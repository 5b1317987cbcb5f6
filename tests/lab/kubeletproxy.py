"""Forward each node's kubelet endpoint (InternalIP:port) to the KWOK controller on 127.0.0.1.

The API server reaches a node's kubelet (pod logs, exec) at the node's InternalIP; the lab's
InternalIPs are per-host loopback addresses (127.0.10.N) where the host's sshd also answers, while
the one KWOK controller serves every node on 127.0.0.1. This process listens on each InternalIP
at the KWOK port and splices bytes (TLS passes through untouched). Loopback only.

    python -m tests.lab.kubeletproxy --target-port 32763 127.0.10.1 127.0.10.2 ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One direction. Its end is passed on as a half-close, as a TCP connection carries it:
    closing the whole socket there would drop what the other direction still has in flight
    (the end of an exec's output, sent after the API server finished sending)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
            return
    except (ConnectionError, asyncio.CancelledError):
        pass
    with contextlib.suppress(RuntimeError, ConnectionError):
        writer.close()


def _handler(target_port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        for w in (writer, up_writer):
            with contextlib.suppress(RuntimeError, ConnectionError):
                w.close()

    return handle


async def serve(addresses: list[str], port: int, target_port: int) -> None:
    for a in addresses:
        if not ipaddress.ip_address(a).is_loopback:
            raise SystemExit(f"refusing to listen on non-loopback address {a}")
    servers = [await asyncio.start_server(_handler(target_port), a, port) for a in addresses]
    print(f"forwarding {len(servers)} address(es) :{port} -> 127.0.0.1:{target_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.lab.kubeletproxy")
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--port", type=int, help="listen port (default: the target port)")
    ap.add_argument("addresses", nargs="+")
    args = ap.parse_args(argv)
    asyncio.run(serve(args.addresses, args.port or args.target_port, args.target_port))


if __name__ == "__main__":
    main()
