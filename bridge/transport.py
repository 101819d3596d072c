"""The server's two ways in and out: OSC over UDP, and SLIP-framed OSC over TCP.

Both turn what arrives into lists of OSC messages with an `Origin` (who sent them and how to
answer), and both bound what a client can cost:
  * UDP: the allow list; a receive buffer big enough for 16 clients uploading at once;
    `InfoBudget` caps the bytes of `models`/`status` replies an address gets, so the bridge is
    no amplifier for a spoofed sender.
  * TCP: at most `tcp_connections` connections, `frame_bytes` per frame, and `unsent_bytes` of
    replies a client has not read; results wait for the client to read (`drain`) and a client
    that stops reading for `stall_seconds` is dropped.
  * Both: `ReplyMeter` counts the replies the packet being handled has caused, so the server
    can stop handling a packet that would cause too many.
Each dropped packet or connection is logged through a QuietLog: a flood writes a line per kind
every few seconds, with counts.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

from bridge import protocol as P
from bridge.limits import Limits
from bridge.quiet_log import QuietLog
from bridge.udp import OscReceiver

log = logging.getLogger(__name__)

Send = Callable[[bytes], None]
Handler = Callable[[list[P.Message], int, "Origin"], None]
# Receive buffer asked of the kernel (Linux caps it at net.core.rmem_max). The default ~200 kB
# holds only ~100 datagrams: 16 clients uploading at once overflow it, and a request the kernel
# drops is one the bridge can never answer.
RECV_BUFFER = 4 << 20
# Datagrams sent back to back before yielding a millisecond, so a big result does not overrun a
# client's receive buffer: 16 of at most 1400 bytes are 22 KB a millisecond. 32 (44 KB) saved
# 1-2 ms on default-size results, but on an idle machine a 4,867-note poly result then
# outran the Python client in 2 of 3 runs, and the chunks it lost cost a 1 s resend wait
# (1.5 s against 0.5 s; bench/bench_server.py, continue poly max).
BURST = 16
# Datagrams sent before the first pause: a result of up to 32 (about 45 KB, what Generate and
# Continue send at their defaults) goes out at once instead of waiting 1.1 ms for its 17th
# datagram. Default receive buffers hold it several times over: Linux 212,992 bytes
# (net.core.rmem_default), macOS 786,896 (net.inet.udp.recvspace, as `sysctl` prints it on
# macOS 12 and later); the burst rate after it is unchanged. A client that knows its buffer
# holds more asks for a bigger window with the request's `window` key (the Python client does:
# a 2,197-note result of 95 datagrams then waits for no pause, 8.0 -> 5.5-5.9 ms added).
WINDOW = 32
PAUSE = 0.001  # seconds between bursts
BUDGET_ADDRESSES = 1024  # UDP addresses whose info budget is remembered
SEND_RETRIES = 50  # a worker thread's tries, PAUSE apart, at a send the kernel refused as full


async def _pause() -> None:
    await asyncio.sleep(PAUSE)


def on_event_loop() -> bool:
    """Whether the caller runs on the event loop (the bridge runs one) rather than in a worker
    thread, which has none: what may be sent, and retired, from where."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True)
class Origin:
    """Where a packet came from and how to answer it when nothing else is asked for."""

    peer: tuple  # ("udp", ip, port) or ("tcp", ip, connection number): requests are keyed by it
    ip: str
    send: Send
    tcp: bool = False
    drain: Callable[[], Awaitable[None]] = _pause  # await every BURST replies of a result


class ReplyMeter:
    """Replies and bytes sent since `reset`: the server resets it for each packet it handles."""

    def __init__(self) -> None:
        self.replies = 0
        self.bytes = 0

    def reset(self) -> None:
        self.replies = self.bytes = 0

    def count(self, data: bytes) -> None:
        self.replies += 1
        self.bytes += len(data)


class InfoBudget:
    """A token bucket of reply bytes per UDP address for the replies that outweigh their
    request many times (`models`: 24 bytes in, about 7 KB out). A request is taken while the
    address's balance is positive; its replies are paid after, so one may overdraw."""

    def __init__(self, burst: int, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.per_second, self.clock = burst, per_second, clock
        self._balances: OrderedDict[str, tuple[float, float]] = OrderedDict()  # ip -> (balance, when)

    def _balance(self, ip: str) -> float:
        balance, when = self._balances.get(ip, (self.burst, self.clock()))
        return min(self.burst, balance + (self.clock() - when) * self.per_second)

    def allows(self, ip: str) -> bool:
        return self._balance(ip) > 0

    def spend(self, ip: str, nbytes: int) -> None:
        balance = self._balance(ip) - nbytes
        self._balances.pop(ip, None)  # most recently used last: the oldest are forgotten first
        self._balances[ip] = (balance, self.clock())
        while len(self._balances) > BUDGET_ADDRESSES:
            self._balances.popitem(last=False)


class UdpServer:
    """The UDP endpoint: datagrams from allowed addresses in, replies out.

    A reply may be sent from the worker thread as well as from the loop: a result goes out
    from the thread that made it, without waking the loop first (0.15-0.2 ms on a 2-core
    machine). The thread writes to its own descriptor of the same socket (the loop's transport
    is not thread-safe) and is not counted by the meter, which counts the replies of the
    packet the loop is handling."""

    def __init__(self, handle: Handler, limits: Limits, allow: set[str] | None, meter: ReplyMeter,
                 quiet: QuietLog) -> None:
        self.handle, self.limits, self.allow, self.meter, self.quiet = handle, limits, allow, meter, quiet
        self.transport: asyncio.DatagramTransport | None = None
        self._thread_socket: socket.socket | None = None

    async def start(self, host: str, port: int) -> None:
        receiver = OscReceiver(self._received, self.quiet, self._allowed, self.limits.messages_per_datagram)
        self.transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: receiver, local_addr=(host, port))
        sock = self.transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        except OSError as exc:  # some systems refuse sizes over their limit instead of capping
            log.info("kept the default udp receive buffer: %s", exc)
        self._thread_socket = socket.fromfd(sock.fileno(), sock.family, sock.type)  # a dup: closed on its own
        self._thread_socket.setblocking(False)  # as the loop's: a full buffer is retried, never waited on

    @property
    def port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport:
            self.transport.close()
        if self._thread_socket:
            self._thread_socket.close()

    def _allowed(self, addr: tuple) -> bool:
        if self.allow is None or addr[0] in self.allow:
            return True
        self.quiet.warning("not allowed", "dropped datagram from %s: not in the allow list", addr[0])
        return False

    def _received(self, messages: list[P.Message], skipped: int, addr: tuple) -> None:
        ip, port = addr[0], addr[1]
        self.handle(messages, skipped, Origin(("udp", ip, port), ip, self.sender((ip, port))))

    def sender(self, addr: tuple) -> Send:
        def send(data: bytes) -> None:
            if not on_event_loop():
                self._send_from_thread(data, addr)
                return
            self.meter.count(data)
            try:
                self.transport.sendto(data, addr)
            except OSError as exc:
                log.debug("could not send to %s: %s", addr, exc)

        return send

    def _send_from_thread(self, data: bytes, addr: tuple) -> None:
        """Send from a worker thread. Where the kernel refuses for a full send buffer (the loop
        would queue the datagram) try again for up to 50 ms; a datagram still refused is lost,
        as UDP may lose any, and the client asks for it again."""
        for _ in range(SEND_RETRIES):
            try:
                self._thread_socket.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                time.sleep(PAUSE)
            except OSError as exc:  # unreachable, or the socket closed at shutdown
                log.debug("could not send to %s: %s", addr, exc)
                return
        log.debug("could not send to %s: the send buffer stayed full", addr)


class TcpServer:
    """The TCP listener: one SLIP-framed OSC stream per connection, replies on the same one."""

    def __init__(self, handle: Handler, limits: Limits, allow: set[str] | None, meter: ReplyMeter,
                 quiet: QuietLog) -> None:
        self.handle, self.limits, self.allow, self.meter, self.quiet = handle, limits, allow, meter, quiet
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self._numbers = itertools.count(1)

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._client, host, port)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip = writer.get_extra_info("peername")[0]
        if self.allow is not None and ip not in self.allow:
            self.quiet.warning("not allowed", "closed tcp connection from %s: not in the allow list", ip)
            writer.close()
            return
        if len(self.writers) >= self.limits.tcp_connections:
            self.quiet.warning("connections", "closed tcp connection from %s: %d connections are open already",
                               ip, len(self.writers))
            writer.close()
            return
        origin = Origin(("tcp", ip, next(self._numbers)), ip, self._sender(writer, ip), tcp=True,
                        drain=lambda: self._drain(writer, ip))
        decoder = P.SlipDecoder(self.limits.frame_bytes)
        self.writers.add(writer)
        try:
            # A connection closed for unread replies stops here: what it still had buffered
            # would only make replies that nobody can receive.
            while not writer.is_closing() and (data := await reader.read(65536)):
                for frame in decoder.feed(data):
                    if writer.is_closing():
                        break
                    try:
                        messages, skipped = P.decode_packet(frame, self.limits.messages_per_datagram)
                    except P.ProtocolError as exc:
                        self.quiet.warning("undecodable", "dropped undecodable packet (%d bytes) from %s: %s",
                                           len(frame), ip, exc)
                        continue
                    self.handle(messages, skipped, origin)
        except P.ProtocolError as exc:
            self.quiet.warning("bad stream", "closed tcp connection from %s: %s", ip, exc)
        except ConnectionError:
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def _sender(self, writer: asyncio.StreamWriter, ip: str) -> Send:
        def send(data: bytes) -> None:
            if writer.is_closing():
                return
            frame = P.slip_encode(data)
            if writer.transport.get_write_buffer_size() + len(frame) > self.limits.unsent_bytes:
                self.quiet.warning("unread", "closed tcp connection from %s: more than %d bytes of replies unread",
                                   ip, self.limits.unsent_bytes)
                writer.transport.abort()
                return
            self.meter.count(data)
            writer.write(frame)

        return send

    async def _drain(self, writer: asyncio.StreamWriter, ip: str) -> None:
        """Wait until the client has read most of what was sent; drop it if it stalls."""
        try:
            await asyncio.wait_for(writer.drain(), self.limits.stall_seconds)
        except asyncio.TimeoutError:
            self.quiet.warning("stalled", "closed tcp connection from %s: no reply read for %g s", ip,
                               self.limits.stall_seconds)
            writer.transport.abort()
        except ConnectionError:
            pass


def allow_set(allow: Sequence[str] | None) -> set[str] | None:
    """The allow list as addresses spelt as peers report them; ValueError names a bad entry."""
    return None if allow is None else {P.ip_address(entry) for entry in allow}
