"""The one UDP receiver: the server, the Python client and the AbletonOSC peer all listen with it.

Each datagram is checked against the owner's `accept` (the allow list, AbletonOSC's address),
decoded (a message or a bundle, at most `max_messages` messages) and handed on as a list of
messages; garbage is dropped with a rate-limited log line, so no datagram can raise into the
event loop or flood the log.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from pythonosc.osc_message import OscMessage

from bridge import protocol as P
from bridge.quiet_log import QuietLog

log = logging.getLogger(__name__)

Handler = Callable[[list[OscMessage], int, tuple], None]  # messages, how many more the datagram held, sender


class OscReceiver(asyncio.DatagramProtocol):
    def __init__(self, handle: Handler, quiet: QuietLog, accept: Callable[[tuple], bool] = lambda addr: True,
                 max_messages: int = 1 << 16) -> None:
        self.handle = handle
        self.quiet = quiet
        self.accept = accept
        self.max_messages = max_messages

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if not self.accept(addr):
            return
        try:
            messages, skipped = P.decode_packet(data, self.max_messages)
        except P.ProtocolError as exc:
            self.quiet.warning("undecodable", "dropped undecodable packet (%d bytes) from %s: %s", len(data), addr[0], exc)
            return
        self.handle(messages, skipped, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP "port unreachable" from a peer that went away: nothing to do.
        log.debug("udp error: %s", exc)
