"""The server's `/bridge/duet/...` handlers: sessions keyed by sender and id, answers streamed back.

The OSC server hands every message under `wire.PREFIX` to `DuetEndpoint.message` with the
sender's key and a `route` that turns a `reply_port` value (or None) into a way to answer, and
adds `describe` to its `models` reply: that is the whole hook (bridge/server.py, "duet hook").
Nothing here reaches into the server. Sessions run on the server's loop (runner.py); their
models run in one thread of their own, so a long Generate never holds an answer up.
"""
from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from bridge import protocol as P
from bridge.duet import answers, wire
from bridge.duet.events import Answer, Cut, Notice
from bridge.duet.modes import LEAD, MODES, Mode
from bridge.duet.runner import SessionRunner
from bridge.duet.session import SESSIONS
from bridge.errors import error_code, error_reply
from bridge.limits import Limits
from bridge.meter import MeterError, parse
from bridge.params import Param, ParamError
from bridge.tools import ToolError

log = logging.getLogger(__name__)

Send = Callable[[bytes], None]
Route = Callable[[Any], Send]  # reply_port value or None -> where replies go (ParamError for a bad one)
KEPT_ANSWERS = 8  # answers per session that `resend` can still send
TEMPO = Param("tempo", "float", 120.0, "The transport's tempo in beats (quarter notes) a minute.", 1.0, 999.0)


@dataclass(eq=False)
class Entry:
    sid: str
    mode: Mode
    runner: SessionRunner
    send: Send
    answers: OrderedDict[int, Answer] = field(default_factory=OrderedDict)
    touched: float = field(default_factory=time.monotonic)


class DuetEndpoint:
    def __init__(self, store: Any, limits: Limits = Limits(), lead: float = LEAD) -> None:
        self.store = store
        self.limits = limits  # duet_sessions, duet_idle
        self.lead = lead  # seconds between a decision and the answer's first beat
        self.sessions: dict[tuple, Entry] = {}
        self.executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="bridge-duet")

    def stop(self) -> None:
        for entry in self.sessions.values():
            entry.runner.close()
        self.sessions.clear()
        if self.executor:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def describe(self, rid: str) -> list[bytes]:
        return wire.describe(rid)

    def message(self, address: str, args: list, peer: tuple, route: Route) -> None:
        if address in wire.REPLIES:  # never answer an answer: two peers would bounce forever
            log.info("dropped %s: not a bridge request", address)
            return
        try:
            sid = P.request_id(args[0] if args else None)
        except P.ProtocolError as exc:
            self._reply(args, route)[0](error_reply("", "bad_request", f"{address}: {exc}"))
            return
        handlers = {wire.START: self._start, wire.STOP: self._stop, wire.NOTE: self._note,
                    wire.CLOCK: self._clock, wire.RESEND: self._resend}
        handler = handlers.get(address)
        request = address in (wire.START, wire.STOP)
        reply, refused = self._reply(args, route) if request else (None, None)
        try:
            if refused:
                raise refused
            if handler is None:
                raise ToolError(f"no such address {address}; known: {', '.join(sorted(handlers))}", "unknown_address")
            handler(sid, args[1:], peer, reply)
        except Exception as exc:
            code = error_code(exc)
            if code == "internal":
                log.exception("error handling %s %s", address, sid)
            entry = self.sessions.get((peer, sid))
            if request:
                reply(error_reply(sid, code, str(exc)))
            else:
                (entry.send if entry else route(None))(wire.error_message(sid, code, str(exc)))

    @staticmethod
    def _reply(args: list, route: Route) -> tuple[Send, ParamError | None]:
        """Where a request's replies go: its `reply_port`, so that even a refused request reaches
        a client that listens on its own port; a bad reply_port is refused to the sender."""
        try:
            return route(P.reply_port_in(args)), None
        except ParamError as exc:
            return route(None), exc

    # Requests --------------------------------------------------------------------------------

    def _start(self, sid: str, args: list, peer: tuple, send: Send) -> None:
        given = P.key_values(args)
        given.pop("reply_port", None)
        given.pop("timeout", None)
        name = given.pop("mode", "duet")
        mode = MODES.get(str(name))
        if mode is None:
            raise ParamError(f"mode must be one of {', '.join(MODES)}, got {name!r}")
        tempo = TEMPO.coerce(given.pop("tempo", TEMPO.default))
        try:
            meter = parse(given.pop("meter", "4/4"))
            session = SESSIONS[mode.name](mode.resolve(given), meter, tempo)  # a meter must have a grid
        except MeterError as exc:
            raise ParamError(str(exc)) from None
        key = (peer, sid)
        entry = self.sessions.get(key)
        if entry is not None and entry.mode is mode:
            entry.runner.session.configure(session.params, meter, tempo)
            entry.runner.clock.tempo = tempo
            entry.send = send
            entry.runner.arm()
        else:
            if entry is not None:
                self._drop(key)
            self._make_room()
            runner = SessionRunner(session, self.store, self.executor, lambda event: self._emit(key, event),
                                   lambda exc: self._failed(key, exc), self.lead)
            entry = self.sessions[key] = Entry(sid, mode, runner, send)
        warming = entry.runner.loop.run_in_executor(self.executor, answers.warm_up, entry.runner.session, self.store)
        warming.add_done_callback(lambda done: self._started(key, entry, sid, send, done))

    def _started(self, key: tuple, entry: Entry, sid: str, send: Send, done: Any) -> None:
        """`done` once the warm-up answered; a failed one (no model for this type and meter) ends
        the session with the tool's error."""
        exc = done.exception() if not done.cancelled() else ToolError("the server is stopping", "shutting_down")
        if exc is None:
            send(P.message(P.DONE, sid, 0))
            return
        if self.sessions.get(key) is entry:
            self._drop(key)
        code = error_code(exc)
        if code == "internal":
            log.error("duet session %s failed to start", sid, exc_info=exc)
        send(error_reply(sid, code, str(exc) or type(exc).__name__))

    def _stop(self, sid: str, args: list, peer: tuple, send: Send) -> None:
        given = P.key_values(args)
        given.pop("reply_port", None)
        given.pop("timeout", None)
        if given:
            raise ParamError(f"{wire.STOP} takes no parameter {next(iter(given))!r}")
        if self.sessions.get((peer, sid)) is None:
            raise ToolError(f"no duet session {sid} is open", "unknown_request")
        self._drop((peer, sid))
        send(P.message(P.DONE, sid, 0))

    def _make_room(self) -> None:
        """Drop sessions idle for `duet_idle` seconds; refuse a new one while `duet_sessions` are in use."""
        now = time.monotonic()
        for key, entry in list(self.sessions.items()):
            if now - entry.touched > self.limits.duet_idle:
                self._drop(key)
        if len(self.sessions) >= self.limits.duet_sessions:
            raise ToolError(f"{self.limits.duet_sessions} duet sessions are open; stop one first", "busy")

    def _drop(self, key: tuple) -> None:
        self.sessions.pop(key).runner.close()

    # The stream -------------------------------------------------------------------------------

    def _entry(self, sid: str, peer: tuple, args: list, fields: tuple[str, ...]) -> Entry:
        if len(args) != len(fields):
            raise P.ProtocolError(f"takes <id> {' '.join(f'<{f}>' for f in fields)}")
        entry = self.sessions.get((peer, sid))
        if entry is None:
            raise ToolError(f"no duet session {sid} is open: send {wire.START} first", "unknown_request")
        entry.touched = time.monotonic()
        return entry

    def _note(self, sid: str, args: list, peer: tuple, reply: Send | None) -> None:
        entry = self._entry(sid, peer, args, ("beat", "pitch", "velocity"))
        beat, pitch, velocity = P.as_float("beat", args[0]), P.as_int("pitch", args[1]), P.as_int("velocity", args[2])
        if not (0 <= pitch <= 127 and 0 <= velocity <= 127 and math.isfinite(beat)):
            raise P.ProtocolError(f"a note takes a beat, a pitch 0-127 and a velocity 0-127, got {args}")
        entry.runner.note(beat, pitch, velocity)

    def _clock(self, sid: str, args: list, peer: tuple, reply: Send | None) -> None:
        entry = self._entry(sid, peer, args, ("beat", "tempo", "playing"))
        beat, tempo = P.as_float("beat", args[0]), TEMPO.coerce(P.as_float("tempo", args[1]))
        entry.runner.sync(beat, tempo, bool(P.as_int("playing", args[2])))

    def _resend(self, sid: str, args: list, peer: tuple, reply: Send | None) -> None:
        entry = self._entry(sid, peer, args, ("answer", "chunk"))
        answer = entry.answers.get(P.as_int("answer", args[0]))
        chunk = P.as_int("chunk", args[1])
        if answer is None or not 0 <= chunk < wire.chunk_count(answer):
            raise ToolError(f"no recent answer {args[0]} chunk {args[1]} in session {sid}", "unknown_request")
        entry.send(wire.answer_chunk(sid, answer, chunk))

    def _emit(self, key: tuple, event: Answer | Cut | Notice) -> None:
        entry = self.sessions.get(key)
        if entry is None:
            return
        if isinstance(event, Cut):
            entry.send(wire.cut_message(entry.sid, event))
            return
        if isinstance(event, Notice):
            entry.send(wire.notice_message(entry.sid, event))
            return
        entry.answers[event.number] = event
        while len(entry.answers) > KEPT_ANSWERS:
            entry.answers.popitem(last=False)
        for data in wire.answer_messages(entry.sid, event):
            entry.send(data)

    def _failed(self, key: tuple, exc: Exception) -> None:
        entry = self.sessions.get(key)
        code = error_code(exc)
        if code == "internal":
            log.error("duet answer failed", exc_info=exc)
        if entry is not None:
            entry.send(wire.error_message(entry.sid, code, str(exc) or type(exc).__name__))
