"""The OSC server: datagram -> request -> job -> tool -> reply.

  bridge.transport  UDP and TCP in and out; allow list, per-connection and per-address limits
  bridge.server     (here) each message becomes a request: the small ones are answered at once,
                    uploads go to bridge.uploads, tool requests become jobs
  bridge.jobs       the queue and the one-final-reply rule; bridge.worker runs a job's tool
  bridge.results    finished results for `resend` and `input last`
  bridge.saving     `save` names confined to the output folder, written through folder handles
  bridge.limits     every limit, as `status` reports it
  bridge.serving    `serve()`: the server as a program (start-up lines, signals)

Every request with a usable id gets exactly one final reply (`done` or `error`); bad input of
any kind is answered with an error or dropped with a rate-limited log line: no packet can
stop the server.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from bridge import live_requests as L
from bridge import protocol as P
from bridge.ableton import AbletonOSC
from bridge.duet import wire as duet_wire
from bridge.duet.endpoint import DuetEndpoint
from bridge.errors import RequestError, error_code, error_reply
from bridge.jobs import Job, Jobs
from bridge.limits import Limits
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore
from bridge.params import ParamError
from bridge.quiet_log import QuietLog
from bridge.results import Results
from bridge.saving import confine_path, relative_name
from bridge.tools import TOOLS, Tool
from bridge.transport import WINDOW, InfoBudget, Origin, ReplyMeter, Send, TcpServer, UdpServer, allow_set
from bridge.uploads import Upload, Uploads
from bridge.worker import Runner

log = logging.getLogger(__name__)

MAX_INPUTS = max(tool.max_inputs for tool in TOOLS.values())
DEFAULT_OUTPUT_DIR = Path.home() / "Music" / "magenta-bridge"
# Reply addresses are never answered: two peers that answered each other's errors would
# bounce messages forever.
REPLIES = {P.ACK, P.PROGRESS, P.RESULT, P.RESULT_NOTES, P.DONE, P.NOTICE, P.ERROR, P.PONG,
           P.MODEL, P.REFUSED, P.TOOL, P.PARAM, P.LIMIT, L.DELIVERED}
INFO = ("models", "status")  # requests whose replies outweigh them: paid from the InfoBudget


class BridgeServer:
    """The bridge's OSC endpoint. `await start()`, then `port` holds the bound UDP port.

    `queue_size` and `max_notes` override the same fields of `limits`."""

    def __init__(self, host: str = "127.0.0.1", port: int = P.DEFAULT_PORT, tcp_port: int | None = None,
                 bundles_dir: str | Path | None = DEFAULT_BUNDLES_DIR, store: ModelStore | None = None,
                 queue_size: int | None = None, workers: int = 1, default_timeout: float = 60.0,
                 allow: Sequence[str] | None = None, max_notes: int | None = None,
                 output_dir: str | Path = DEFAULT_OUTPUT_DIR, ableton: AbletonOSC | None = None,
                 limits: Limits | None = None) -> None:
        overrides = {k: v for k, v in (("queue_size", queue_size), ("max_notes", max_notes)) if v is not None}
        self.limits = replace(limits or Limits(), **overrides)
        self.host = host
        self._port = port
        self._tcp_port = tcp_port
        self.store = store if store is not None else ModelStore.from_dir(bundles_dir)
        self.workers = workers
        self.default_timeout = default_timeout
        self.allow = allow_set(allow)
        self.output_dir = Path(output_dir)
        self.ableton = ableton if ableton is not None else AbletonOSC()  # binds nothing until used
        self.quiet = QuietLog(log)
        self.meter = ReplyMeter()
        self._packet_at = 0.0  # perf_counter() when handling the current packet began: Job.stages' "received"
        self.info_budget = InfoBudget(self.limits.info_bytes, self.limits.info_bytes_per_second)
        self.uploads = Uploads(self.limits, MAX_INPUTS, self.quiet)
        self.results = Results(self.limits.result_cache)
        self.registered: dict[tuple, int] = {}  # UDP peer -> port its replies and status pushes go to
        self.jobs = Jobs(self.limits.queue_size, self._run, self._busy_changed)
        self.udp = UdpServer(self._packet, self.limits, self.allow, self.meter, self.quiet)
        self.tcp = TcpServer(self._packet, self.limits, self.allow, self.meter, self.quiet) if tcp_port is not None else None
        self._busy = False
        self.duet = DuetEndpoint(self.store, self.limits)  # duet hook: /bridge/duet/... (issue #23)
        self._requests: dict[str, tuple[int, Callable[[str, list, Origin, Send], None]]] = {
            "ping": (0, self._ping), "status": (0, self._status), "models": (0, self._models),
            "cancel": (1, self._cancel), "resend": (2, self._resend), "register": (1, self._register)}

    @property
    def port(self) -> int:
        return self.udp.port

    @property
    def tcp_port(self) -> int | None:
        return self.tcp.port if self.tcp else None

    async def start(self) -> None:
        self.runner = Runner(self.store, self.limits, self.ableton, self.results, self.output_dir,
                             self.jobs.finish, self.workers)
        await self.udp.start(self.host, self._port)
        if self.tcp:
            await self.tcp.start(self.host, self._tcp_port)
        self.uploads.start()
        self.jobs.start(self.workers)
        self.duet.start()  # duet hook

    async def stop(self) -> None:
        """Answer every open request with `shutting_down`, then close sockets and workers."""
        await self.jobs.stop()
        self.uploads.stop()
        if self.tcp:
            await self.tcp.close()
        self.duet.stop()  # duet hook
        self.udp.close()
        await self.ableton.close()
        self.runner.stop()
        self.quiet.flush()

    async def _run(self, job: Job) -> None:
        await self.runner.run(job)

    # Packets and messages ----------------------------------------------------------------

    def _packet(self, messages: list[P.Message], skipped: int, origin: Origin) -> None:
        """Handle a datagram's or frame's messages until they have caused `replies_per_datagram`
        replies; the rest are refused with one error, so a packet of 2,000 `models` requests
        costs what one does."""
        self.meter.reset()
        self._packet_at = time.perf_counter()
        for index, msg in enumerate(messages):
            if self.meter.replies >= self.limits.replies_per_datagram:
                skipped += len(messages) - index
                break
            try:
                self._message(msg.address, msg.params, origin)
            except Exception:  # a bug here must cost one request, never the server
                log.exception("failed to handle %s from %s", msg.address, origin.ip)
                origin.send(error_reply("", "internal", f"server error handling {msg.address}"))
        if skipped:
            self.quiet.warning("crowded", "left %d message(s) of a packet from %s unhandled", skipped, origin.ip)
            origin.send(error_reply("", "bad_request", (
                f"{skipped} message(s) of this packet were not handled: a packet is read up to "
                f"{self.limits.messages_per_datagram} messages or {self.limits.replies_per_datagram} replies; "
                "send the rest in separate packets")))

    def _message(self, address: str, args: list, origin: Origin) -> None:
        if not address.startswith(P.PREFIX) or address in REPLIES:
            self.quiet.info("foreign", "dropped %s from %s: not a bridge request", address, origin.ip)
            return
        if address.startswith(duet_wire.PREFIX):  # duet hook: the Duet stream has its own handlers
            self.duet.message(address, args, origin.peer, lambda reply_port: self._route(origin, reply_port))
            return
        try:
            rid = P.request_id(args[0] if args else None)
        except P.ProtocolError as exc:
            self._early_route(origin, args)(error_reply("", "bad_request", f"{address}: {exc}"))
            return
        if address in (P.CLIP, P.NOTES):
            self.uploads.add((origin.peer, rid), address, args[1:])
            return
        name = address[len(P.PREFIX):]
        if name in INFO and not origin.tcp and not self.info_budget.allows(origin.ip):
            self.quiet.warning("info budget", "dropped %s from %s: more than %d bytes of models/status replies "
                               "asked at once", address, origin.ip, self.limits.info_bytes)
            return
        sent = self.meter.bytes
        send: Send | None = None  # until the request's own reply_port is read
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
            code = error_code(exc)
            if code == "internal":
                log.exception("error handling %s %s", address, rid)
            reply_id = exc.reply_id if isinstance(exc, RequestError) and exc.reply_id is not None else rid
            (send or self._early_route(origin, args))(error_reply(reply_id, code, str(exc)))
        finally:
            if name in INFO and not origin.tcp:
                self.info_budget.spend(origin.ip, self.meter.bytes - sent)

    def _early_route(self, origin: Origin, args: list) -> Send:
        """Where to answer before the request is parsed: its reply_port if one is readable, so a
        bad id or key-value list still reaches a client that listens on its own port. Looked
        for only when such an error is to be sent: the scan reads every argument, and a note
        chunk of an upload has 244 (6-8 us of the 28-36 a chunk took, measured warm)."""
        try:
            return self._route(origin, P.reply_port_in(args))
        except ParamError:
            return self._route(origin, None)

    def _route(self, origin: Origin, reply_port: Any) -> Send:
        """Reply to reply_port if given, else to a registered port, else to the sender."""
        if origin.tcp:
            return origin.send
        if reply_port is not None:
            return self.udp.sender((origin.ip, self._port_number(reply_port, "reply_port")))
        registered = self.registered.get(origin.peer)
        if registered:
            return self.udp.sender((origin.ip, registered))
        return origin.send

    @staticmethod
    def _port_number(value: Any, name: str, low: int = 1) -> int:
        try:
            port = P.as_int(name, value)
        except ValueError:
            port = -1
        if not low <= port <= 65535:
            raise ParamError(f"{name} must be a port number {low}-65535, got {value!r}")
        return port

    # Tool requests -----------------------------------------------------------------------

    def _tool_request(self, tool: Tool, rid: str, given: dict[str, Any], origin: Origin, send: Send) -> None:
        timeout = given.pop("timeout", self.default_timeout)
        if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                or not 0 < timeout <= self.limits.max_timeout):
            raise ParamError(f"timeout must be seconds, more than 0 and at most {self.limits.max_timeout:g}, "
                             f"got {timeout!r}")
        window = self._window(given.pop("window", WINDOW))
        save = given.pop("save", None)
        if save is not None:
            confine_path(self.output_dir, save)  # refused before anything is queued
            save = relative_name(save)
        routing = L.Routing.take(given)
        tool.resolve(given)  # refuse bad parameters before anything is queued
        key = (origin.peer, rid)
        if key in self.jobs:
            self.uploads.take(key)  # clips sent for the refused request must not feed a later one
            raise RequestError("duplicate_id", f"request {rid} is still running; use a new id", reply_id="")
        upload = self.uploads.peek(key) or self.uploads.new()
        if upload.error:
            self.uploads.take(key)
            raise upload.error
        missing = upload.assembly.missing(tool.min_inputs) if routing.input == "upload" else []
        if missing:
            raise RequestError("missing_input", P.format_missing(missing))
        if self.jobs.queue.full():
            raise RequestError("busy", f"{self.limits.queue_size} request(s) already waiting; try again later")
        self.uploads.take(key)
        clips = self._inputs(tool, routing, upload, origin)
        job = Job(key, rid, tool, clips, given, send, float(timeout), save, routing, origin.drain,
                  udp=not origin.tcp, window=WINDOW if origin.tcp else window, stages={"received": self._packet_at})
        self.jobs.submit(job)
        send(P.message(P.ACK, rid))
        job.stamp("acked")

    def _window(self, value: Any) -> int:
        """The request's `window`: result datagrams the client's receive buffer holds at once,
        sent before the first pause. A buffer bigger than the server's `max_window` is taken as
        that much: the client announced room, not a demand. Checked over TCP too, but not used
        there: the connection paces itself, and its unread replies are capped (`unsent_bytes`)."""
        try:
            window = P.as_int("window", value)
        except ValueError:
            window = 0
        if window < 1:
            raise ParamError(f"window must be the result datagrams this client's receive buffer holds, "
                             f"at least 1, got {value!r}")
        return min(window, self.limits.max_window)

    def _inputs(self, tool: Tool, routing: L.Routing, upload: Upload, origin: Origin) -> list:
        """The uploaded clips, or the client's last result; `input live` clips are read by the worker."""
        if routing.input == "live":
            return []
        if routing.input == "last":
            clips = L.last_inputs(tool, self.results.last(origin.peer))
        else:
            clips = upload.assembly.clips()
        return self.limits.check_clips(clips)

    def _busy_changed(self) -> None:
        """Push `/bridge/status` to registered clients when the server turns busy or idle."""
        busy = self.jobs.busy
        if busy != self._busy:
            self._busy = busy
            if not self.registered:  # nobody to tell: no message built twice a request for nothing
                return
            data = P.message(P.STATUS, "", *self._status_args())
            for (_, ip, _), port in self.registered.items():
                self.udp.sender((ip, port))(data)

    # Small requests ----------------------------------------------------------------------

    def _status_args(self) -> tuple:
        return (int(self._busy), len(self.jobs.queue), ",".join(item.name for item in self.store.loaded),
                len(self.store.refused))

    def _ping(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        send(P.message(P.PONG, rid))
        send(P.message(P.DONE, rid, 0))

    def _status(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        send(P.message(P.STATUS, rid, *self._status_args()))
        for name, value in self.limits.rows():
            send(P.message(P.LIMIT, rid, name, value))
        send(P.message(P.DONE, rid, 0))

    def _models(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        for model in self.store.describe():
            send(P.message(P.MODEL, rid, *(P.truncate(str(model[k])) for k in ("name", "kind")),
                           P.truncate(",".join(model["tools"])), P.truncate(str(model["model_class"])),
                           P.truncate(",".join(model["meters"]))))
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
        job = self.jobs.get((origin.peer, target))
        if job is None:
            raise RequestError("unknown_request", f"no request {target} is running")
        self.jobs.cancel(job, error_reply(target, "cancelled", f"cancelled by request {rid}"))
        send(P.message(P.DONE, rid, 0))

    def _resend(self, rid: str, args: list, origin: Origin, send: Send) -> None:
        clips = self.results.get((origin.peer, rid))
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
        self.registered.pop(origin.peer, None)
        if port:
            self.registered[origin.peer] = port
            while len(self.registered) > self.limits.max_registered:
                del self.registered[next(iter(self.registered))]
        self._route(origin, None)(P.message(P.DONE, rid, 0))
