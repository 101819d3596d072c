"""One session on an asyncio loop: a timer for its next decision, answers made off the loop.

Notes and clock reports come in with their transport beats and move the clock (clock.py); after
each, the timer is set for the moment the session next needs a decision, `LEAD` seconds before
the answer's first beat. The tool runs in the executor, so the loop keeps taking notes while a
model works; its result is placed on the loop, after every cut that came in meanwhile, and only
then emitted. The endpoint (OSC) and `magenta-bridge duet` (MIDI) both run sessions this way.

A Duet answer is made ahead: PREPARE seconds before the phrase would end (once the player
pauses), the model answers the phrase as it stands; if no note came by the decision, that answer
is sent at once, so a busy machine delays the model, not the answer. A note in between makes it
stale, and the decision runs the model again.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any, Callable

from bridge.duet import answers
from bridge.duet.clock import TransportClock
from bridge.duet.events import Answer, Call, Cut, Notice
from bridge.duet.modes import LEAD
from bridge.duet.session import JUMP, Session

Emit = Callable[[Answer | Cut | Notice], None]
PREPARE = 0.25  # seconds before a Duet decision at which its answer is made ahead


class SessionRunner:
    """Runs `session` on the running loop: `note` and `sync` feed it, `emit` gets its answers,
    cuts and notices (each distinct notice once a session: a player who plays chords hears
    about it once, not with every answer), `on_error` what a model raised; the models run in
    `executor`."""

    def __init__(self, session: Session, store: Any, executor: Executor, emit: Emit,
                 on_error: Callable[[Exception], None], lead: float = LEAD) -> None:
        self.session = session
        self.store = store
        self.executor = executor
        self.emit = emit
        self.on_error = on_error
        self.noticed: set[str] = set()
        self.lead = lead
        self.loop = asyncio.get_running_loop()
        self.clock = TransportClock(0.0, self.loop.time(), session.tempo)
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task] = set()
        self.prepared: tuple[int, Call, asyncio.Future] | None = None  # (session version, call, result)
        self.closed = False

    def now(self) -> float:
        return self.clock.beat_at(self.loop.time())

    def note(self, beat: float, pitch: int, velocity: int, wall: float | None = None) -> None:
        """A note at transport `beat`, played at `wall` on the loop's clock (default: now). While the
        client says its transport is stopped, notes are heard but nothing is answered."""
        if self.clock.playing:
            self.clock.sync(beat, self.loop.time() if wall is None else wall)
        for cut in self.session.note(beat, pitch, velocity):
            self.emit(cut)
        self.arm()

    def sync(self, beat: float, tempo: float, playing: bool, wall: float | None = None) -> None:
        """Where the client's transport is; a stop or a jump back starts afresh."""
        wall = self.loop.time() if wall is None else wall
        if not playing or (self.clock.playing and beat < self.clock.beat_at(wall) - JUMP):
            self.session.reset()
        self.clock.sync(beat, wall, tempo, playing)
        self.session.tempo = tempo
        self.arm()

    def arm(self) -> None:
        """Set the timer for the next decision, or first for making its answer ahead."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.closed or not self.clock.playing:
            return
        now, lead = self.now(), self.clock.beats(self.lead)
        due = self.session.due(now, lead)
        if due is None:
            return
        when = due
        if self.prepared is None or self.prepared[0] != self.session.version:
            ahead = due - self.clock.beats(PREPARE)
            if ahead <= now:
                self._prepare(lead)
            else:
                when = ahead
        self.timer = self.loop.call_at(self.clock.wall_at(when), self._tick)

    def _prepare(self, lead: float) -> None:
        call = self.session.prepare(lead)
        self.prepared = None if call is None else (self.session.version, call, self._make(call))

    def _make(self, call: Call) -> asyncio.Future:
        future = self.loop.run_in_executor(self.executor, answers.make, self.session, call, self.store)
        future.add_done_callback(lambda done: done.cancelled() or done.exception())  # a stale one's error is dropped
        return future

    def _tick(self) -> None:
        self.timer = None
        version, prepared = self.session.version, self.prepared
        call = self.session.decide(self.now(), self.clock.beats(self.lead))
        if call is not None:
            made = prepared[2] if prepared and prepared[0] == version and prepared[1] == call else self._make(call)
            self.prepared = None
            task = self.loop.create_task(self._answer(call, made))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        self.arm()

    async def _answer(self, call: Call, made: asyncio.Future) -> None:
        try:
            result, notices = await made
        except Exception as exc:  # a missing model, a bug: the session lives on, the client is told
            self.on_error(exc)
            return
        answer = self.session.answered(call, result, self.now())
        if answer is not None and not self.closed:
            self.emit(answer)
            for text in notices:
                if text not in self.noticed:
                    self.noticed.add(text)
                    self.emit(Notice(answer.number, text))

    def close(self) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        for task in self.tasks:
            task.cancel()
