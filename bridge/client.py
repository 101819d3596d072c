"""Python clients for the bridge: `AsyncBridgeClient` for asyncio code, `BridgeClient` for scripts.

The client does what a Max or TouchOSC patch does by hand, and recovers from what UDP loses:
it uploads input clips in chunks, resends whatever chunks the server reports missing, asks
again for result chunks that never arrived, and turns an `error` reply into `BridgeError`.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from bridge import protocol as P
from bridge.clip import Clip, ClipError, Note
from bridge.duet import wire as duet_wire
from bridge.quiet_log import QuietLog
from bridge.udp import OscReceiver

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Reply = tuple[str, list]
RESEND_WAIT = 1.0  # seconds to wait for asked-for chunks before asking again
RECEIVE_BUFFER = 1 << 20  # bytes asked of the kernel for replies (see _ask_receive_buffer)
# What one result datagram (at most 1,400 bytes) may take of a receive buffer: Linux charges a
# datagram's whole allocation (its truesize, about 2.3 KB on loopback), so a page is a safe bound.
DATAGRAM_BYTES = 4096
# On loopback a tool request goes out with its uploads in one datagram, an OSC bundle, where
# they fit: the server then reads one datagram where it read one a message, each an event-loop
# pass (continue and interpolate at their defaults: 4-7 datagrams, about 0.1 ms). Across a
# network every datagram stays under 1,400 bytes, the size Wi-Fi carries unfragmented.
BUNDLE_BYTES = 60_000  # under the 65,507 bytes of a UDP datagram
BUNDLE_MESSAGES = 32  # well under any server's messages_per_datagram (256 by default)


class BridgeError(Exception):
    """An `error` reply from the bridge (or `no_reply` when it stayed silent)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Status:
    busy: bool
    queue: int
    models: tuple[str, ...]
    refused: int
    limits: dict[str, float] = field(default_factory=dict, compare=False)  # the server's limits (status only)


class AsyncBridgeClient:
    """Talks to one bridge over UDP. Use `async with AsyncBridgeClient(...) as client:`.

    Without `reply_port` the bridge answers the socket that sent (as for SuperCollider); with
    it, replies arrive on a second socket bound to that port (0 picks a free one), as a Max
    patch with `udpsend` + `udpreceive` would have it. `timeout` is the longest silence
    waited for before `BridgeError("no_reply")`; progress messages keep a request alive.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = P.DEFAULT_PORT, reply_port: int | None = None,
                 timeout: float = 30.0, retries: int = 3) -> None:
        self.host = host
        self.port = port
        self.reply_port = reply_port
        self.timeout = timeout
        self.retries = retries
        # Request id -> what takes its replies, called in the datagram callback as they arrive.
        self._inboxes: dict[str, Callable[[str, list], None]] = {}
        self._ids = itertools.count(1)
        self._transports: list[asyncio.DatagramTransport] = []
        self.last_status: Status | None = None  # the latest status the server pushed
        self.window = 0  # result datagrams the reply socket holds at once (loopback): each run's `window`
        self.loopback = P.is_loopback(host)  # requests may go as one bundle with their uploads
        self._quiet = QuietLog(log)

    async def open(self) -> "AsyncBridgeClient":
        loop = asyncio.get_running_loop()
        sender, _ = await loop.create_datagram_endpoint(self._receiver, remote_addr=(self.host, self.port))
        self._transports = [sender]
        if self.reply_port is not None:
            local = "127.0.0.1" if P.is_loopback(self.host) else "0.0.0.0"
            receiver, _ = await loop.create_datagram_endpoint(self._receiver, local_addr=(local, self.reply_port))
            self.reply_port = receiver.get_extra_info("sockname")[1]
            self._transports.append(receiver)
        windows = [_ask_receive_buffer(transport.get_extra_info("socket")) for transport in self._transports]
        # Replies arrive on the last socket (the reply port's, else the sender's). Across a network
        # a burst can also overflow a router's queue, which no buffer of ours measures; on
        # loopback the receive buffer is the only queue, so only there is it announced.
        self.window = windows[-1] if self.loopback else 0
        return self

    async def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports = []

    async def __aenter__(self) -> "AsyncBridgeClient":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def local_port(self) -> int:
        """The port requests are sent from (where replies go without a reply port)."""
        return self._transports[0].get_extra_info("sockname")[1]

    def new_id(self) -> str:
        return str(next(self._ids))

    def _receiver(self) -> OscReceiver:
        return OscReceiver(self._received, self._quiet, drain=64, notes=True)

    def _received(self, messages: list[P.Message], skipped: int, addr: tuple) -> None:
        for msg in messages:
            self._dispatch(msg.address, msg.params, msg.notes)

    def _dispatch(self, address: str, args: list, notes: list[Note] | None = None) -> None:
        """Route one reply to the request waiting for its id (a note chunk's notes apart, as the
        receiver read them: protocol.parse); tests override this to lose replies."""
        rid = args[0] if args and isinstance(args[0], str) else None
        if address == P.STATUS and rid == "" and len(args) == 5:
            self.last_status = _status(args[1:])
        elif rid in self._inboxes:
            self._inboxes[rid](address, args, notes)
        else:
            log.debug("dropped reply %s for no waiting request", address)

    def send(self, address: str, *args: Any) -> None:
        """Send one message with explicit types (the raw protocol, for anything not wrapped)."""
        self._transports[0].sendto(P.message(address, *args))

    def _request_args(self, params: dict[str, Any]) -> list[Any]:
        if self.reply_port is not None:
            params = {**params, "reply_port": self.reply_port}
        return [value for item in params.items() for value in item]

    async def _next(self, inbox: asyncio.Queue[Reply], wait: float) -> Reply | None:
        if not inbox.empty():
            return inbox.get_nowait()
        try:  # a timeout scope, not wait_for: no task made per reply
            async with asyncio.timeout(wait):
                return await inbox.get()
        except TimeoutError:
            return None

    async def request(self, address: str, *args: Any, rid: str | int | None = None, **params: Any) -> list[Reply]:
        """Send `<address> <id> args... [key value]...` and return the replies before `done`."""
        rid = self.new_id() if rid is None else P.request_id(rid)
        inbox: asyncio.Queue[Reply] = asyncio.Queue()
        self._inboxes[rid] = lambda address, args, notes: inbox.put_nowait(
            (address, args if notes is None else [*args, *(v for note in notes for v in P.note_args(note))]))
        try:
            self.send(address, rid, *args, *self._request_args(params))
            replies = []
            while (reply := await self._next(inbox, self.timeout)) is not None:
                if reply[0] == P.DONE:
                    return replies
                if reply[0] == P.ERROR:
                    raise _error(reply[1])
                replies.append(reply)
            raise BridgeError("no_reply", f"no reply to {address} {rid} within {self.timeout:g} s")
        finally:
            del self._inboxes[rid]

    async def ping(self) -> None:
        await self.request(P.PING)

    async def status(self) -> Status:
        """The server's state, with its limits (`/bridge/limit` replies) in `limits`."""
        replies = await self.request(P.STATUS)
        limits = {args[1]: args[2] for address, args in replies if address == P.LIMIT and len(args) == 3}
        return _status(replies[0][1][1:], limits)

    async def models(self) -> dict[str, Any]:
        """{"models": [...], "refused": {name: reason}, "tools": {name: {..., "params": [...]}},
        "modes": {duet/follow: {"tool", "help", "params"}}}."""
        out: dict[str, Any] = {"models": [], "refused": {}, "tools": {}, "modes": {}}
        for address, args in await self.request(P.MODELS):
            if address == P.MODEL:
                out["models"].append(dict(zip(("name", "kind", "tools", "model_class", "meters"), args[1:])))
                for key in ("tools", "meters"):
                    out["models"][-1][key] = [x for x in str(out["models"][-1].get(key, "")).split(",") if x]
            elif address == P.REFUSED:
                out["refused"][args[1]] = args[2]
            elif address == P.TOOL:
                name, low, high, color, _, text = args[1:]
                out["tools"][name] = {"inputs": (low, high), "color": color, "help": text, "params": []}
            elif address == duet_wire.MODE:
                name, tool, _, text = args[1:]
                out["modes"][name] = {"tool": tool, "help": text, "params": []}
            elif address in (P.PARAM, duet_wire.PARAM):
                keys = ("name", "type", "min", "max", "default", "choices", "help")
                param = dict(zip(keys, args[2:]))
                param["choices"] = param["choices"].split(",") if param["choices"] else []
                out["tools" if address == P.PARAM else "modes"][args[1]]["params"].append(param)
        return out

    async def cancel(self, target_id: str) -> None:
        """Ask the bridge to stop request `target_id`; that request ends with `cancelled`."""
        await self.request(P.CANCEL, str(target_id))

    async def register(self, port: int) -> None:
        """Have replies to this socket's requests, and status pushes, sent to `port` (0: stop)."""
        await self.request(P.REGISTER, port)

    async def run(self, tool: str, clips: Iterable[Clip] = (), *, progress: Progress | None = None,
                  notice: Callable[[str], None] | None = None, request_id: str | int | None = None,
                  **params: Any) -> list[Clip]:
        """Run a tool on input clips and return its clips, recovering lost chunks either way;
        `notice` hears what the bridge says about the result besides it (/bridge/notice)."""
        rid = self.new_id() if request_id is None else P.request_id(request_id)
        clips = list(clips)
        uploads = {(index, chunk - 1): data for index, clip in enumerate(clips) for chunk, data in
                   enumerate(P.clip_messages(P.CLIP, P.NOTES, rid, clip, index, len(clips)))}
        if self.window > 0 and "window" not in params:
            params["window"] = self.window
        request = P.message(P.PREFIX + tool, rid, *self._request_args(params))
        silence = max(self.timeout, float(params.get("timeout", 0)) + 2.0)
        state = self._inboxes[rid] = _RunReplies(progress, notice)
        retries = self.retries
        try:
            for data in _packets([*uploads.values(), request], self.loopback):
                self._transports[0].sendto(data)
            while True:
                if not await state.woken(RESEND_WAIT if state.done else silence):
                    if state.done and retries > 0:
                        retries -= 1
                        self._ask_again(rid, state.result.missing())
                        continue
                    raise BridgeError("no_reply", f"no complete reply to {tool} {rid}")
                error, state.error = state.error, None
                if isinstance(error, (ClipError, P.ProtocolError)):
                    raise error
                if error is not None:
                    wanted = P.parse_missing(error.message) if isinstance(error, BridgeError) and \
                        error.code == "missing_input" else []
                    if retries <= 0 or not wanted or not all(key in uploads for key in wanted):
                        raise error
                    retries -= 1
                    for key in wanted:
                        self._transports[0].sendto(uploads[key])
                    self._transports[0].sendto(request)
                    continue
                if state.complete():
                    return state.result.clips()
                if state.done:
                    self._ask_again(rid, state.result.missing())
        except (ClipError, P.ProtocolError) as exc:
            raise BridgeError("bad_reply", f"result for {rid} is malformed: {exc}") from None
        finally:
            del self._inboxes[rid]

    def _ask_again(self, rid: str, missing: list[tuple[int, int]]) -> None:
        for index, chunk in missing:
            self.send(P.RESEND, rid, index, chunk)


class _RunReplies:
    """One `run`'s replies, taken in the datagram callback as they arrive, so a result of dozens
    of datagrams wakes the waiting coroutine when it is complete, fails, or needs a decision
    (`done` with chunks missing, an error), never once a datagram. Whatever goes wrong in the
    callback (a malformed chunk, the caller's progress callback raising) is kept in `error` for
    `run` to raise, not thrown into the event loop."""

    def __init__(self, progress: Progress | None, notice: Callable[[str], None] | None) -> None:
        self.progress, self.notice = progress, notice
        self.result = P.ClipAssembly(max_clips=4096, max_notes=10**7)
        self.done = False
        self.error: Exception | None = None
        self._wake = asyncio.Event()

    def complete(self) -> bool:
        return self.done and not self.result.missing()

    def __call__(self, address: str, args: list, notes: list[Note] | None = None) -> None:
        try:
            if address == P.PROGRESS and self.progress and len(args) == 3:
                self.progress(float(args[1]), str(args[2]))
            elif address == P.NOTICE and self.notice and len(args) == 2:
                self.notice(str(args[1]))
            elif address == P.RESULT:
                self.result.add_header(args[1:])
            elif address == P.RESULT_NOTES:
                self.result.add_chunk(args[1:], notes)
            elif address == P.ERROR:
                self.error = _error(args)
            elif address == P.DONE and not self.done:  # later dones answer our resends
                self.done = True
                self.result.set_clip_count(P.as_int("clip count", args[1]))
                self._wake.set()
            else:
                return
        except Exception as exc:  # noqa: BLE001 - raised by run, where the caller can see it
            self.error = exc
        if self.error is not None or (self.done and address in (P.RESULT, P.RESULT_NOTES) and self.complete()):
            self._wake.set()

    async def woken(self, wait: float) -> bool:
        """Wait up to `wait` seconds for something `run` must act on; False on silence."""
        try:
            async with asyncio.timeout(wait):
                await self._wake.wait()
        except TimeoutError:
            return False
        self._wake.clear()
        return True


def _packets(messages: list[bytes], loopback: bool) -> list[bytes]:
    """The datagrams that carry a request and its uploads: one bundle of them all on loopback
    where it fits (BUNDLE_BYTES, BUNDLE_MESSAGES), else one datagram each."""
    if loopback and 1 < len(messages) <= BUNDLE_MESSAGES and sum(len(m) + 4 for m in messages) + 16 <= BUNDLE_BYTES:
        return [P.bundle(messages)]
    return messages


def _ask_receive_buffer(sock: socket.socket) -> int:
    """Room for a whole big result (a 4,867-note one is 203 KB) while Python parses its first
    datagrams. Returns how many result datagrams the buffer holds, told to the server as
    `window` so that it sends them without pausing (the server caps it); 0, and no `window`,
    when the size cannot be read. The system caps the size (Linux: net.core.rmem_max, often
    208 KB, reported doubled for its own bookkeeping); a refusal keeps the default."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError as exc:
        log.debug("kept the default udp receive buffer: %s", exc)
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // DATAGRAM_BYTES
    except OSError:
        return 0


def _error(args: list) -> BridgeError:
    code = args[1] if len(args) > 1 else "unknown"
    return BridgeError(str(code), str(args[2]) if len(args) > 2 else "")


def _status(args: list, limits: dict[str, float] | None = None) -> Status:
    busy, queue, models, refused = args
    return Status(bool(busy), int(queue), tuple(models.split(",")) if models else (), int(refused), limits or {})


class BridgeClient:
    """The blocking twin of AsyncBridgeClient, for scripts and tests; it owns a private event
    loop, so it must not be used from inside a running one."""

    def __init__(self, host: str = "127.0.0.1", port: int = P.DEFAULT_PORT, reply_port: int | None = None,
                 timeout: float = 30.0, retries: int = 3) -> None:
        self._loop = asyncio.new_event_loop()
        self.aio = AsyncBridgeClient(host, port, reply_port, timeout, retries)
        self._loop.run_until_complete(self.aio.open())

    def _call(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    @property
    def reply_port(self) -> int | None:
        return self.aio.reply_port

    @property
    def local_port(self) -> int:
        return self.aio.local_port

    def ping(self) -> None:
        self._call(self.aio.ping())

    def status(self) -> Status:
        return self._call(self.aio.status())

    def models(self) -> dict[str, Any]:
        return self._call(self.aio.models())

    def run(self, tool: str, clips: Iterable[Clip] = (), *, progress: Progress | None = None,
            notice: Callable[[str], None] | None = None, request_id: str | int | None = None,
            **params: Any) -> list[Clip]:
        return self._call(self.aio.run(tool, clips, progress=progress, notice=notice, request_id=request_id,
                                       **params))

    def cancel(self, target_id: str) -> None:
        self._call(self.aio.cancel(target_id))

    def register(self, port: int) -> None:
        self._call(self.aio.register(port))

    def request(self, address: str, *args: Any, **params: Any) -> list[Reply]:
        return self._call(self.aio.request(address, *args, **params))

    def close(self) -> None:
        self._call(self.aio.close())
        self._loop.close()

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
