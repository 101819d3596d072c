"""A Python player of the Duet stream: tests, the benchmark and scripts play through it.

`DuetClient` is an `AsyncBridgeClient` (start and stop are requests like any other) that also
takes the stream: each answer chunk's notes go to `on_notes` as they arrive, cuts to `on_cut`,
notices to `on_notice` (and `notices`), and a finished answer (every chunk in) to the `answers`
queue. A chunk still missing `RESEND_WAIT` after another of its answer came is asked for again,
and a chunk that arrives twice is dropped, so nothing is played twice.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from bridge import protocol as P
from bridge.client import AsyncBridgeClient
from bridge.clip import ClipError, Note
from bridge.duet import wire
from bridge.duet.events import Cut, Notice, Timed

RESEND_WAIT = 0.02  # seconds
RESEND_ROUNDS = 3


@dataclass
class Received:
    """An answer as it comes in; `notes` grows chunk by chunk."""

    number: int
    start: float
    end: float
    n_chunks: int
    chunks: dict[int, list[Timed]] = field(default_factory=dict)
    completed_at: float | None = None  # the loop's time when the last chunk came

    @property
    def notes(self) -> list[Timed]:
        return sorted((n for c in sorted(self.chunks) for n in self.chunks[c]), key=lambda n: (n.start, n.pitch))

    def missing(self) -> list[int]:
        return [c for c in range(self.n_chunks) if c not in self.chunks]


class DuetClient(AsyncBridgeClient):
    """One session (`sid`) of Duet or Follow against a bridge; open it with `async with`."""

    def __init__(self, *args: Any, sid: str = "py", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sid = sid
        self.received: dict[int, Received] = {}
        self.answers: asyncio.Queue[Received] = asyncio.Queue()
        self.cuts: list[Cut] = []
        self.errors: list[tuple[str, str]] = []
        self.on_notes: Callable[[int, list[Timed]], None] = lambda number, notes: None
        self.on_cut: Callable[[Cut], None] = lambda cut: None
        self.notices: list[Notice] = []
        self.on_notice: Callable[[Notice], None] = lambda notice: None

    async def start(self, mode: str = "duet", tempo: float = 120.0, meter: str = "4/4", **params: Any) -> None:
        """Open (or change) the session; raises BridgeError as the bridge refuses it."""
        given = {k: v for k, v in params.items() if v is not None}
        await self.request(wire.START, rid=self.sid, mode=mode, tempo=tempo, meter=meter, **given)

    async def stop(self) -> None:
        await self.request(wire.STOP, rid=self.sid)

    def note(self, beat: float, pitch: int, velocity: int) -> None:
        """A note on (velocity 1-127) or off (0) at transport `beat`."""
        self.send(wire.NOTE, self.sid, float(beat), int(pitch), int(velocity))

    def clock(self, beat: float, tempo: float, playing: bool = True) -> None:
        self.send(wire.CLOCK, self.sid, float(beat), float(tempo), int(playing))

    def _dispatch(self, address: str, args: list, notes: list[Note] | None = None) -> None:
        if not address.startswith(wire.PREFIX) or address in (wire.MODE, wire.PARAM) or args[:1] != [self.sid]:
            super()._dispatch(address, args, notes)
        elif address == wire.ANSWER:
            try:
                self._chunk(*wire.decode_chunk(args[1:]))
            except (ClipError, P.ProtocolError) as exc:
                self.errors.append(("bad_reply", str(exc)))
        elif address == wire.CUT and len(args) == 3:
            cut = Cut(int(args[1]), float(args[2]))
            self.cuts.append(cut)
            self.on_cut(cut)
        elif address == wire.NOTICE and len(args) == 3:
            notice = Notice(int(args[1]), str(args[2]))
            self.notices.append(notice)
            self.on_notice(notice)
        elif address == wire.ERROR and len(args) == 3:
            self.errors.append((str(args[1]), str(args[2])))

    def _chunk(self, number: int, chunk: int, n_chunks: int, start: float, length: float, notes: list[Timed]) -> None:
        answer = self.received.get(number)
        if answer is None:
            answer = self.received[number] = Received(number, start, start + length, n_chunks)
            asyncio.get_running_loop().call_later(RESEND_WAIT, self._ask_again, answer, RESEND_ROUNDS)
        if chunk in answer.chunks or answer.completed_at is not None:
            return  # a resend that crossed the original: played once
        answer.chunks[chunk] = notes
        self.on_notes(number, notes)
        if not answer.missing():
            answer.completed_at = asyncio.get_running_loop().time()
            self.answers.put_nowait(answer)

    def _ask_again(self, answer: Received, rounds: int) -> None:
        if answer.completed_at is not None or rounds <= 0:
            return
        for chunk in answer.missing():
            self.send(wire.RESEND, self.sid, answer.number, chunk)
        asyncio.get_running_loop().call_later(RESEND_WAIT, self._ask_again, answer, rounds - 1)
