"""The one UDP receiver: the server, the Python client and the AbletonOSC peer all listen with it.

Each datagram is checked against the owner's `accept` (the allow list, AbletonOSC's address),
decoded (a message or a bundle, at most `max_messages` messages) and handed on as a list of
messages; garbage is dropped with a rate-limited log line, so no datagram can raise into the
event loop or flood the log. With `drain`, the arrival of one datagram also reads up to that
many more already waiting, through a descriptor of its own: the Python client reads a result of
dozens of datagrams without an event-loop pass (14 us) for each.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Callable

from bridge import protocol as P
from bridge.quiet_log import QuietLog

log = logging.getLogger(__name__)

Handler = Callable[[list[P.Message], int, tuple], None]  # messages, how many more the datagram held, sender


class OscReceiver(asyncio.DatagramProtocol):
    def __init__(self, handle: Handler, quiet: QuietLog, accept: Callable[[tuple], bool] = lambda addr: True,
                 max_messages: int = 1 << 16, drain: int = 0, notes: bool = False) -> None:
        self.handle = handle
        self.quiet = quiet
        self.accept = accept
        self.max_messages = max_messages
        self.drain = drain
        self.notes = notes  # note chunks read into Notes (protocol.parse): for a receiver of results
        self._socket: socket.socket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Windows' proactor loop has a read posted before it hands over a datagram: a read of our
        # own would take the datagram after it first. Selector loops (Linux, macOS) read on demand.
        if self.drain and not isinstance(asyncio.get_running_loop(), getattr(asyncio, "ProactorEventLoop", ())):
            sock = transport.get_extra_info("socket")
            self._socket = socket.fromfd(sock.fileno(), sock.family, sock.type)
            self._socket.setblocking(False)  # draining must never wait for a datagram

    def connection_lost(self, exc: Exception | None) -> None:
        if self._socket:
            self._socket.close()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._one(data, addr)
        for _ in range(self.drain if self._socket else 0):
            try:
                data, addr = self._socket.recvfrom(65536)
            except OSError:  # nothing waiting (or an ICMP error the loop will report)
                return
            self._one(data, addr)

    def _one(self, data: bytes, addr: tuple) -> None:
        if not self.accept(addr):
            return
        try:
            messages, skipped = P.decode_packet(data, self.max_messages, self.notes)
        except P.ProtocolError as exc:
            self.quiet.warning("undecodable", "dropped undecodable packet (%d bytes) from %s: %s", len(data), addr[0], exc)
            return
        self.handle(messages, skipped, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP "port unreachable" from a peer that went away: nothing to do.
        log.debug("udp error: %s", exc)
