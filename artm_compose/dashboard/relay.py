"""The dashboard's port on a Swarm manager's loopback: each TCP connection passed to the dashboard's Unix socket.

A Swarm service cannot publish a port on 127.0.0.1: the routing mesh (``mode: ingress``) opens it on every
address of every node, and ``mode: host`` on every address of the node that runs the task (a host address
in a stack file is ignored with a warning; moby/moby#26696, #32299). So ``up --dashboard`` runs two
services on the manager: the dashboard on the cluster's overlay network, where it reaches Redis,
listening on a Unix socket in a directory of the state dir (mode 0700), and this relay on the host's
network, listening on 127.0.0.1:dashboard_port only. From elsewhere it is reached through an SSH tunnel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _relay(socket_path: Path, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
    except OSError as error:
        body = f"the dashboard does not answer on {socket_path} yet ({error.strerror or error})\n".encode()
        client_writer.write(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        with contextlib.suppress(ConnectionError, OSError):
            await client_writer.drain()
        client_writer.close()
        return
    upstream = asyncio.ensure_future(_pipe(client_reader, writer))
    try:
        # The dashboard answers HTTP/1.0 and closes: once its answer is through, the exchange is over
        # (a client that keeps its side open holds nothing).
        await _pipe(reader, client_writer)
    finally:
        upstream.cancel()
        writer.close()
        client_writer.close()


def serve_relay(host: str, port: int, socket_path: Path,
                ready: Callable[[str, int], None] = lambda _host, _port: None) -> None:
    """Listen on ``host``:``port`` and pass every connection to the Unix socket ``socket_path``, until killed;
    ``ready(host, port)`` is called once listening."""

    async def main() -> None:
        server = await asyncio.start_server(partial(_relay, socket_path), host, port)
        bound = server.sockets[0].getsockname()
        ready(bound[0], bound[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())
