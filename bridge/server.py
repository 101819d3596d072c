"""The OSC server: requests in over UDP (and optionally SLIP-framed TCP), tools run off the loop.

The receive loop only parses, checks and queues; tools run in worker threads, so `ping` and
`cancel` are answered while a model is busy. Every request gets exactly one final reply
(`done` or `error`), which a `Job` guarantees by letting only the first `finish` through:
the tool's result, a timeout, a cancel and a shutdown race for it. Bad input of any kind is
answered with an error or dropped with a log line; no datagram can stop the server.
"""
from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Callable, Sequence

from pythonosc.osc_packet import OscPacket

from bridge import live_requests as L
from bridge import protocol as P
from bridge.ableton import AbletonOSC
from bridge.clip import DEFAULT_MAX_NOTES, Clip, ClipError
from bridge.duet import wire as duet_wire
from bridge.duet.endpoint import DuetEndpoint
from bridge.engine import blas
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore
from bridge.params import ParamError
from bridge.tools import TOOLS, Tool, ToolContext, ToolError

log = logging.getLogger(__name__)

Send = Callable[[bytes], None]
MAX_INPUTS = max(tool.max_inputs for tool in TOOLS.values())
UPLOAD_TTL = 120.0  # seconds an unclaimed upload is kept
MAX_UPLOADS = 64
RESULT_CACHE = 32  # finished requests whose results `resend` can still send
MAX_REGISTERED = 64
PROGRESS_INTERVAL = 0.1  # at most ~10 progress messages a second per request
MAX_TIMEOUT = 86400.0
DEFAULT_OUTPUT_DIR = Path.home() / "Music" / "magenta-bridge"
MIDI_SUFFIXES = (".mid", ".midi")
DRUM_TOOLS = ("groove", "drumify")  # tools whose results are always drums (as bridge.cli writes them)
# Datagrams sent back to back before yielding a millisecond, so a big result does not
# overrun a client's receive buffer in one burst.
BURST = 16
# Receive buffer asked of the kernel (Linux caps it at net.core.rmem_max). The default ~200 kB
# holds only ~100 datagrams: 16 clients uploading at once overflow it, and a request the kernel
# drops is one the bridge can never answer.
RECV_BUFFER = 4 << 20
# Reply addresses are never answered: two peers that answered each other's errors would
# bounce messages forever.
REPLIES = {P.ACK, P.PROGRESS, P.RESULT, P.RESULT_NOTES, P.DONE, P.ERROR, P.PONG,
           P.MODEL, P.REFUSED, P.TOOL, P.PARAM, L.DELIVERED}


class RequestError(Exception):
    """An error reply: `/bridge/error <id> <code> <message>`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_code(exc: BaseException) -> str:
    """The protocol code for an exception raised by a tool or while checking a request."""
    if isinstance(exc, (ToolError, RequestError)):
        return exc.code
    if isinstance(exc, ParamError):
        return "bad_param"
    if isinstance(exc, ClipError):
        return "bad_clip"
    if isinstance(exc, P.ProtocolError):
        return "bad_request"
    return "internal"


@dataclass(frozen=True)
class Origin:
    """Where a packet came from and how to answer it when nothing else is asked for."""

    peer: tuple  # ("udp", ip, port) or ("tcp", ip, connection number): requests are keyed by it
    ip: str
    send: Send
    tcp: bool = False


@dataclass
class Upload:
    """Input clips arriving for one (peer, id), kept until a tool request claims them.

    A bad header or chunk poisons the upload: uploads get no reply of their own, so the tool
    request that follows is answered with the reason.
    """

    assembly: P.ClipAssembly
    touched: float = field(default_factory=time.monotonic)
    error: Exception | None = None


@dataclass(eq=False)
class Job:
    """One queued or running tool request."""

    key: tuple
    rid: str
    tool: Tool
    clips: list[Clip]
    given: dict[str, Any]
    send: Send
    timeout: float
    save: Path | None = None  # where to write the result as MIDI, already confined to the output folder
    routing: L.Routing = field(default_factory=L.Routing)  # input last/live, deliver live
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    delivering: bool = False  # results are going out; cancel and timeout no longer apply
    timer: asyncio.TimerHandle | None = None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: "BridgeServer") -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.server._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP "port unreachable" from a client that went away: nothing to do.
        log.debug("udp error: %s", exc)


class BridgeServer:
    """The bridge's OSC endpoint. `await start()`, then `port` holds the bound UDP port."""

    def __init__(self, host: str = "127.0.0.1", port: int = P.DEFAULT_PORT, tcp_port: int | None = None,
                 bundles_dir: str | Path | None = DEFAULT_BUNDLES_DIR, store: ModelStore | None = None,
                 queue_size: int = 8, workers: int = 1, default_timeout: float = 60.0,
                 allow: Sequence[str] | None = None, max_notes: int = DEFAULT_MAX_NOTES,
                 output_dir: str | Path = DEFAULT_OUTPUT_DIR, ableton: AbletonOSC | None = None) -> None:
        self.host = host
        self._port = port
        self._tcp_port = tcp_port
        self.store = store if store is not None else ModelStore.from_dir(bundles_dir)
        self.queue_size = queue_size
        self.workers = workers
        self.default_timeout = default_timeout
        self.allow = None if allow is None else {str(ipaddress.ip_address(a)) for a in allow}
        self.max_notes = max_notes
        self.output_dir = Path(output_dir)
        self.ableton = ableton if ableton is not None else AbletonOSC()  # binds nothing until used
        self._uploads: OrderedDict[tuple, Upload] = OrderedDict()
        self._results: OrderedDict[tuple, list[Clip]] = OrderedDict()
        self._registered: OrderedDict[tuple, int] = OrderedDict()
        self._jobs: dict[tuple, Job] = {}
        self._running = 0
        self._busy = False
        self._connections = itertools.count(1)
        self._writers: set[asyncio.StreamWriter] = set()
        self.duet = DuetEndpoint(self.store)  # duet hook: /bridge/duet/... (issue #23)
        self._requests = {"ping": (0, self._ping), "status": (0, self._status), "models": (0, self._models),
                          "cancel": (1, self._cancel), "resend": (2, self._resend), "register": (1, self._register)}

    @property
    def port(self) -> int:
        return self._transport.get_extra_info("sockname")[1]

    @property
    def tcp_port(self) -> int | None:
        return self._tcp.sockets[0].getsockname()[1] if self._tcp else None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._queue: asyncio.Queue[Job] = asyncio.Queue(self.queue_size)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="bridge-tool")
        blas.set_workers(self.workers)  # tools running side by side share the cores' BLAS threads
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self._port))
        try:
            self._transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        except OSError as exc:  # some systems refuse sizes over their limit instead of capping
            log.info("kept the default udp receive buffer: %s", exc)
        self._tcp = None
        if self._tcp_port is not None:
            self._tcp = await asyncio.start_server(self._tcp_client, self.host, self._tcp_port)
        self._tasks = [loop.create_task(self._worker()) for _ in range(self.workers)]
        self.duet.start()  # duet hook

    async def stop(self) -> None:
        """Answer every open request with `shutting_down`, then close sockets and workers."""
        for job in list(self._jobs.values()):
            job.cancel.set()
            self._finish(job, self._error(job.rid, "shutting_down", "the server is stopping"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp:
            self._tcp.close()
            for writer in list(self._writers):
                writer.close()
            await self._tcp.wait_closed()
        self.duet.stop()  # duet hook
        self._transport.close()
        await self.ableton.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # Receiving ---------------------------------------------------------------------------

    def _allowed(self, ip: str) -> bool:
        return self.allow is None or ip in self.allow

    def _datagram(self, data: bytes, addr: tuple) -> None:
        ip, port = addr[0], addr[1]
        if not self._allowed(ip):
            log.warning("dropped datagram from %s: not in the allow list", ip)
            return

        def send(reply: bytes) -> None:
            self._sendto(reply, (ip, port))

        self._packet(data, Origin(("udp", ip, port), ip, send))

    def _sendto(self, data: bytes, addr: tuple) -> None:
        try:
            self._transport.sendto(data, addr)
        except OSError as exc:
            log.debug("could not send to %s: %s", addr, exc)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip = writer.get_extra_info("peername")[0]
        if not self._allowed(ip):
            log.warning("closed tcp connection from %s: not in the allow list", ip)
            writer.close()
            return

        def send(reply: bytes) -> None:
            if not writer.is_closing():
                writer.write(P.slip_encode(reply))

        origin = Origin(("tcp", ip, next(self._connections)), ip, send, tcp=True)
        decoder = P.SlipDecoder()
        self._writers.add(writer)
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    self._packet(frame, origin)
        except P.ProtocolError as exc:
            log.warning("closed tcp connection from %s: %s", ip, exc)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _packet(self, data: bytes, origin: Origin) -> None:
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception as exc:  # python-osc raises several kinds on garbage
            log.warning("dropped undecodable packet (%d bytes) from %s: %s", len(data), origin.ip, exc)
            return
        for msg in messages:
            try:
                self._message(msg.address, msg.params, origin)
            except Exception:  # a bug here must cost one request, never the server
                log.exception("failed to handle %s from %s", msg.address, origin.ip)
                origin.send(self._error("", "internal", f"server error handling {msg.address}"))

    def _message(self, address: str, args: list, origin: Origin) -> None:
        if not address.startswith(P.PREFIX) or address in REPLIES:
            log.info("dropped %s from %s: not a bridge request", address, origin.ip)
            return
        if address.startswith(duet_wire.PREFIX):  # duet hook: the Duet stream has its own handlers
            self.duet.message(address, args, origin.peer, lambda reply_port: self._route(origin, reply_port))
            return
        if address in (P.CLIP, P.NOTES):
            self._upload(address, args, origin)
            return
        name = address[len(P.PREFIX):]
        try:
            rid = P.request_id(args[0] if args else None)
        except P.ProtocolError as exc:
            origin.send(self._error("", "bad_request", f"{address}: {exc}"))
            return
        send = origin.send
        try:
            n_positional, handler = self._requests.get(name, (0, None))
            if handler is None and name not in TOOLS:
                known = ", ".join(sorted([*self._requests, *TOOLS]))
                raise RequestError("unknown_address", f"no such address {address}; known: {known}")
            positional = args[1:1 + n_positional]
            if len(positional) < n_positional:
                raise P.ProtocolError(f"{address} takes {n_positional} argument(s) after the id")
            given = P.key_values(args[1 + n_positional:])
            send = self._route(origin, given.pop("reply_port", None))
            if handler is None:
                self._tool_request(TOOLS[name], rid, given, origin, send)
                return
            given.pop("timeout", None)
            if given:
                raise ParamError(f"{address} takes no parameter {next(iter(given))!r}")
            handler(rid, positional, origin, send)
        except Exception as exc:
            if error_code(exc) == "internal":
                log.exception("error handling %s %s", address, rid)
            send(self._error(rid, error_code(exc), str(exc)))

    def _route(self, origin: Origin, reply_port: Any) -> Send:
        """Reply to reply_port if given, else to a registered port, else to the sender."""
        if origin.tcp:
            return origin.send
        if reply_port is not None:
            port = self._port_number(reply_port, "reply_port")
            return lambda data: self._sendto(data, (origin.ip, port))
        registered = self._registered.get(origin.peer)
        if registered:
            return lambda data: self._sendto(data, (origin.ip, registered))
        return origin.send

    @staticmethod
    def _port_number(value: Any, name: str, low: int = 1) -> int:
        try:
            port = P.as_int(name, value)
        except ClipError:
            port = -1
        if not low <= port <= 65535:
            raise ParamError(f"{name} must be a port number {low}-65535, got {value!r}")
        return port

    # Uploads -----------------------------------------------------------------------------

    def _upload(self, address: str, args: list, origin: Origin) -> None:
        """Store an input clip header or note chunk for the tool request that will follow."""
        try:
            rid = P.request_id(args[0] if args else None)
        except P.ProtocolError as exc:
            origin.send(self._error("", "bad_request", f"{address}: {exc}"))
            return
        upload = self._claim_upload((origin.peer, rid))
        if upload.error:
            return
        try:
            if address == P.CLIP:
                upload.assembly.add_header(args[1:])
            else:
                upload.assembly.add_chunk(args[1:])
        except (ClipError, P.ProtocolError) as exc:
            log.info("upload %s from %s refused: %s", rid, origin.ip, exc)
            upload.error = exc
        self._trim_uploads()

    def _claim_upload(self, key: tuple) -> Upload:
        upload = self._uploads.pop(key, None) or self._new_upload()
        upload.touched = time.monotonic()
        self._uploads[key] = upload  # most recently touched last
        return upload

    def _new_upload(self) -> Upload:
        return Upload(P.ClipAssembly(MAX_INPUTS, self.max_notes))

    def _trim_uploads(self) -> None:
        """Drop uploads nobody claimed in time, and the oldest while too many notes are held."""
        now = time.monotonic()
        cap = MAX_INPUTS * self.max_notes * 2
        total = sum(u.assembly.n_notes for u in self._uploads.values())
        while self._uploads:
            key, oldest = next(iter(self._uploads.items()))
            if now - oldest.touched < UPLOAD_TTL and len(self._uploads) <= MAX_UPLOADS and total <= cap:
                break
            total -= oldest.assembly.n_notes
            del self._uploads[key]
            log.info("dropped unclaimed upload %s", key)

    # Tool requests and jobs --------------------------------------------------------------

    def _tool_request(self, tool: Tool, rid: str, given: dict[str, Any], origin: Origin, send: Send) -> None:
        timeout = given.pop("timeout", self.default_timeout)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= MAX_TIMEOUT:
            raise ParamError(f"timeout must be seconds, more than 0 and at most {MAX_TIMEOUT:g}, got {timeout!r}")
        save = given.pop("save", None)
        save_path = None if save is None else confine_path(self.output_dir, save)
        routing = L.Routing.take(given)
        tool.resolve(given)  # refuse bad parameters before anything is queued
        key = (origin.peer, rid)
        if key in self._jobs:
            raise RequestError("duplicate_id", f"request {rid} is still running; use a new id")
        upload = self._uploads.get(key) or self._new_upload()
        if upload.error:
            del self._uploads[key]
            raise upload.error
        missing = upload.assembly.missing(tool.min_inputs) if routing.input == "upload" else []
        if missing:
            raise RequestError("missing_input", P.format_missing(missing))
        if self._queue.full():
            raise RequestError("busy", f"{self.queue_size} request(s) already waiting; try again later")
        self._uploads.pop(key, None)
        clips = self._inputs(tool, routing, upload, origin)
        job = Job(key, rid, tool, clips, given, send, float(timeout), save_path, routing)
        job.timer = self._loop.call_later(job.timeout, self._expire, job)
        self._jobs[key] = job
        self._queue.put_nowait(job)
        send(P.message(P.ACK, rid))
        self._busy_changed()

    def _inputs(self, tool: Tool, routing: L.Routing, upload: Upload, origin: Origin) -> list[Clip]:
        """The uploaded clips, or the client's last result; `input live` clips are read by the worker."""
        if routing.input == "last":
            previous = next((clips for (peer, _), clips in reversed(self._results.items()) if peer == origin.peer), None)
            return L.last_inputs(tool, previous)
        if routing.input == "live":
            return []
        return [clip.validate(self.max_notes) for clip in upload.assembly.clips()]

    def _expire(self, job: Job) -> None:
        if not job.delivering:
            job.cancel.set()
            self._finish(job, self._error(job.rid, "timeout", f"no result within {job.timeout:g} s"))

    def _finish(self, job: Job, reply: bytes) -> None:
        """Send a job's final reply; only the first call for a job does anything."""
        if job.finished:
            return
        job.finished = True
        if job.timer:
            job.timer.cancel()
        self._jobs.pop(job.key, None)
        job.send(reply)

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            if job.finished:  # cancelled or timed out while waiting
                self._busy_changed()
                continue
            self._running += 1
            self._busy_changed()
            try:
                await self._run(job)
            finally:
                self._running -= 1
                self._busy_changed()

    async def _run(self, job: Job) -> None:
        ctx = ToolContext(models=self.store, progress=self._progress(job), cancelled=job.cancel.is_set)
        try:
            inputs = await L.prepare_inputs(job.tool, job.routing, job.clips, self.ableton) if job.routing.live else job.clips
            clips = await self._loop.run_in_executor(self._executor, job.tool, inputs, job.given, ctx)
            clips = [clip.validate(self.max_notes) for clip in clips]
            if job.finished:
                return
            job.delivering = True
            if job.timer:
                job.timer.cancel()
            if job.save and clips:
                await self._loop.run_in_executor(self._executor, self._save, job, clips)
            if job.routing.deliver == "live":
                for index, slot in enumerate(await L.deliver(job.tool, job.routing, clips, self.ableton)):
                    job.send(P.message(L.DELIVERED, job.rid, index, job.routing.track, slot))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = error_code(exc)
            if code == "internal":
                log.error("tool %s failed on request %s", job.tool.name, job.rid, exc_info=exc)
            self._finish(job, self._error(job.rid, code, str(exc) or type(exc).__name__))
            return
        self._results[job.key] = clips
        while len(self._results) > RESULT_CACHE:
            self._results.popitem(last=False)
        streamed = clips if job.routing.deliver == "osc" else []  # deliver live: the clips are in Live
        for i, data in enumerate(m for index, clip in enumerate(streamed) for m in
                                 P.clip_messages(P.RESULT, P.RESULT_NOTES, job.rid, clip, index, len(clips))):
            job.send(data)
            if i % BURST == BURST - 1:
                await asyncio.sleep(0.001)
        self._finish(job, P.message(P.DONE, job.rid, len(clips)))

    def _save(self, job: Job, clips: list[Clip]) -> None:
        """Write the result where the request's `save` asked; a full disk is the user's to fix, not a bug."""
        drums = job.tool.name in DRUM_TOOLS or job.tool.resolve(dict(job.given)).get("type") == "drums"
        try:
            save_midi(job.save, clips, drums, job.tool.name)
        except OSError as exc:
            raise RequestError("save_failed", f"could not save {job.save.name}: {exc.strerror or exc}") from None

    def _progress(self, job: Job) -> Callable[[float, str], None]:
        """A progress callback for the tool's thread: rate-limited, posted to the loop."""
        last = [0.0]

        def progress(fraction: float, text: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                self._loop.call_soon_threadsafe(self._send_progress, job, float(fraction), P.truncate(str(text)))

        return progress

    def _send_progress(self, job: Job, fraction: float, text: str) -> None:
        if not job.finished and not job.delivering:
            job.send(P.message(P.PROGRESS, job.rid, fraction, text))

    def _busy_changed(self) -> None:
        """Push `/bridge/status` to registered clients when the server turns busy or idle."""
        busy = self._running > 0 or not self._queue.empty()
        if busy != self._busy:
            self._busy = busy
            data = P.message(P.STATUS, "", *self._status_args())
            for (_, ip, _), port in self._registered.items():
                self._sendto(data, (ip, port))

    # Small requests ----------------------------------------------------------------------

    @staticmethod
    def _error(rid: str, code: str, text: str) -> bytes:
        return P.message(P.ERROR, rid, code, P.truncate(text, 600))

    def _status_args(self) -> tuple:
        return (int(self._busy), self._queue.qsize(), ",".join(item.name for item in self.store.loaded),
                len(self.store.refused))

    def _ping(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        send(P.message(P.PONG, rid))
        send(P.message(P.DONE, rid, 0))

    def _status(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        send(P.message(P.STATUS, rid, *self._status_args()))
        send(P.message(P.DONE, rid, 0))

    def _models(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        for model in self.store.describe():
            send(P.message(P.MODEL, rid, *(P.truncate(str(model[k])) for k in ("name", "kind")),
                           P.truncate(",".join(model["tools"])), P.truncate(str(model["model_class"]))))
        for name, reason in self.store.refused.items():
            send(P.message(P.REFUSED, rid, P.truncate(name), P.truncate(reason, 600)))
        for tool in TOOLS.values():
            info = tool.describe()
            send(P.message(P.TOOL, rid, tool.name, tool.min_inputs, tool.max_inputs, info["color"],
                           len(tool.params), tool.help))
            for param in info["params"]:
                send(P.message(P.PARAM, rid, *P.param_args(tool.name, param)))
        for data in self.duet.describe(rid):  # duet hook: the Duet and Follow parameters
            send(data)
        send(P.message(P.DONE, rid, 0))

    def _cancel(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        target = P.request_id(args[0])
        job = self._jobs.get((origin.peer, target))
        if job is None:
            raise RequestError("unknown_request", f"no request {target} is running")
        if not job.delivering:
            job.cancel.set()
            self._finish(job, self._error(target, "cancelled", f"cancelled by request {rid}"))
        send(P.message(P.DONE, rid, 0))

    def _resend(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        clips = self._results.get((origin.peer, rid))
        if clips is None:
            raise RequestError("unknown_request", f"no recent result for request {rid}")
        index, chunk = P.as_int("clip index", args[0]), P.as_int("chunk", args[1])
        if not 0 <= index < len(clips):
            raise P.ProtocolError(f"clip index must be 0-{len(clips) - 1}, got {index}")
        clip = clips[index]
        if chunk == -1:
            send(P.message(P.RESULT, rid, *P.header_args(clip, index, len(clips))))
        elif 0 <= chunk < P.chunk_count(len(clip.notes)):
            send(P.note_chunk(P.RESULT_NOTES, rid, clip, index, chunk))
        else:
            raise P.ProtocolError(f"chunk must be -1 (header) or 0-{P.chunk_count(len(clip.notes)) - 1}, got {chunk}")
        send(P.message(P.DONE, rid, len(clips)))

    def _register(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        if origin.tcp:
            raise P.ProtocolError("register is for UDP clients; TCP replies go back on the connection")
        port = self._port_number(args[0], "port", low=0)
        self._registered.pop(origin.peer, None)
        if port:
            self._registered[origin.peer] = port
            while len(self._registered) > MAX_REGISTERED:
                self._registered.popitem(last=False)
        self._route(origin, None)(P.message(P.DONE, rid, 0))


def confine_path(root: str | Path, name: Any) -> Path:
    """The file `name` inside `root`, or ParamError: a request must never write outside its folder.

    Refused: anything but a relative `.mid`/`.midi` name, `..` anywhere, absolute or drive paths
    (either slash style, since a Windows client may send them), and names that resolve outside
    `root` through a symlink.
    """
    if not isinstance(name, str) or not name.strip():
        raise ParamError(f"save must be a MIDI file name, got {name!r}")
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or PureWindowsPath(name).drive or ".." in pure.parts:
        raise ParamError(f"save must be a relative name inside the output folder, without '..': {name!r}")
    if pure.suffix.lower() not in MIDI_SUFFIXES:
        raise ParamError(f"save must name a .mid or .midi file, got {name!r}")
    base = Path(root).expanduser().resolve()
    path = (base / pure).resolve()
    if not path.is_relative_to(base):
        raise ParamError(f"save {name!r} leads outside the output folder (through a symlink)")
    return path


def save_midi(path: Path, clips: list[Clip], drums: bool, name: str) -> None:
    """Write clips as one MIDI file via a temp file and rename, so a reader never sees half a file."""
    from bridge.midi_io import write_midi  # mido only when a request saves: start-up stays light

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_midi(tmp, clips, drums=drums, name=name)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def exposure_warning(host: str, allow: Sequence[str] | None = None) -> str | None:
    """What to tell the user when the bridge listens beyond this machine; None on loopback.

    Kept apart from `serve` so the decision is testable without binding a public address.
    """
    if P.is_loopback(host):
        return None
    if allow:
        return (f"WARNING: listening on {host}, not loopback: only {', '.join(allow)} will be answered; "
                "bind to 127.0.0.1 if no other machine needs the bridge")
    return (f"WARNING: listening on {host}, not loopback: anyone who can reach this machine can use "
            "the bridge; pass --allow with your clients' addresses or bind to 127.0.0.1")


def serve(host: str = "127.0.0.1", port: int = P.DEFAULT_PORT, tcp_port: int | None = None,
          bundles_dir: str | Path | None = DEFAULT_BUNDLES_DIR, log_level: str = "info", *,
          queue_size: int = 8, workers: int = 1, default_timeout: float = 60.0,
          allow: Sequence[str] | None = None, max_notes: int = DEFAULT_MAX_NOTES,
          output_dir: str | Path = DEFAULT_OUTPUT_DIR, ableton: AbletonOSC | None = None) -> None:
    """Run the bridge until Ctrl-C or SIGTERM, saying where it listens and what it serves."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        server = BridgeServer(host, port, tcp_port, bundles_dir, queue_size=queue_size, workers=workers,
                              default_timeout=default_timeout, allow=allow, max_notes=max_notes,
                              output_dir=output_dir, ableton=ableton)
        await server.start()
        where = f"udp {host}:{server.port}" + (f", tcp (SLIP) {host}:{server.tcp_port}" if server.tcp_port else "")
        print(f"magenta-bridge listening on {where}", flush=True)
        names = ", ".join(item.name for item in server.store.loaded) or "none (tool requests answer model_not_installed)"
        print(f"models loaded from {bundles_dir}: {names}", flush=True)
        for name, reason in server.store.refused.items():
            print(f"refused bundle {name}: {reason}", flush=True)
        warning = exposure_warning(host, allow)
        if warning:
            print(warning, flush=True)
            log.warning("bound to non-loopback address %s", host)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            except NotImplementedError:  # Windows: Ctrl-C raises KeyboardInterrupt instead
                pass
        try:
            await stop.wait()
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

