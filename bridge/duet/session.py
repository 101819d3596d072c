"""What a player did and what to answer, on the transport's beats: no sockets, no clocks, no models.

A session is told about notes (`note`) and asked when it next needs a decision (`due`) and what
to answer then (`decide`); the runner (runner.py) calls it on a timer and hands the `Call` it
gets to a tool. Times are transport beats (quarter notes) whose bar lines lie at whole bars
from beat 0, as in Live; `lead` is how many beats before an answer's start the decision is made.

Duet: a phrase is every note since the last answer. It ends once nothing is held and the last
release lies `wait` beats back; the answer starts on the first beat (or bar line) at least
`lead` after that, is `length` bars of Continue on the phrase (read from the bar line before its
first note, in the session's meter, in the given key or else the phrase's own), and a new note
before the answer is over cuts it there. Follow: `lead` before every bar line while the player
plays, Drumify reads the last `bars` bars and the drums of the last one become the next bar.
"""
from __future__ import annotations

import math
from typing import Any

from bridge.clip import Clip, Note, TimeSignature
from bridge.duet.events import Answer, Call, Cut, Played, Timed
from bridge.duet.modes import DUET, FOLLOW
from bridge.meter import MeterGrid
from bridge.music_stats import estimate_key

EPS = 1e-6
MAX_PHRASE_BARS = 8  # a longer phrase is read from the bar lines within this many bars of the answer
MAX_PLAYED = 4096  # notes remembered at most; the oldest go first
JUMP = 0.25  # beats: a transport that goes back further was moved (a loop, a relocate)
SHORTEST = 1 / 16  # beats: the least a held note lasts when it is read


def ceil_to(x: float, step: float) -> float:
    return math.ceil(x / step - EPS) * step


def floor_to(x: float, step: float) -> float:
    return math.floor(x / step + EPS) * step


class Session:
    """Notes as they are played; what the two modes share."""

    mode = DUET

    def __init__(self, params: dict[str, Any], meter: TimeSignature, tempo: float) -> None:
        self.held: dict[int, tuple[float, int]] = {}  # pitch -> (start, velocity)
        self.played: list[Played] = []
        self.latest = -math.inf  # the latest beat a note came at
        self.counter = 0
        self.version = 0  # changes with every note and setting: a prepared answer is for one version
        self.configure(params, meter, tempo)

    def configure(self, params: dict[str, Any], meter: TimeSignature, tempo: float) -> None:
        """New settings (already resolved); raises MeterError for a meter without a grid."""
        grid = MeterGrid.of(meter)
        self.version += 1
        self.params, self.meter, self.tempo = params, meter, tempo
        self.beat = grid.beat_steps / grid.steps_per_quarter
        self.bar = grid.bar_steps / grid.steps_per_quarter

    def reset(self) -> None:
        """The transport stopped or moved: what was played no longer leads anywhere."""
        self.version += 1
        self.held.clear()
        self.played.clear()
        self.latest = -math.inf

    def note(self, beat: float, pitch: int, velocity: int) -> list[Cut]:
        """A note on (velocity 1-127) or off (0) at `beat`; returns the answers it cuts."""
        if beat < self.latest - JUMP:
            self.reset()
        self.version += 1
        self.latest = max(self.latest, beat)
        if pitch in self.held:
            start, held_velocity = self.held.pop(pitch)
            self.played.append(Played(pitch, start, max(beat, start), held_velocity))
            del self.played[:-MAX_PLAYED]
        if velocity > 0:
            self.held[pitch] = (beat, velocity)
            return self.interrupt(beat)
        return []

    def interrupt(self, beat: float) -> list[Cut]:
        return []

    def prepare(self, lead: float) -> Call | None:
        """The call `decide` will make when it is due, if no note comes first; None where an
        answer cannot be known ahead (Follow's bar is read up to the decision)."""
        return None

    def sounding(self, now: float) -> list[Played]:
        """Played notes plus the held ones, as if released now."""
        return self.played + [Played(p, s, max(now, s + SHORTEST), v) for p, (s, v) in self.held.items()]

    def clip(self, notes: list[Played], origin: float, length: float, name: str) -> Clip:
        """Notes from transport beat `origin` as a clip of `length` beats in the session's meter."""
        return Clip([Note(n.pitch, n.start - origin, max(n.end - n.start, SHORTEST), n.velocity) for n in notes],
                    length, self.tempo, self.meter, None, name)

    def answered(self, call: Call, result: Clip, now: float) -> Answer | None:
        """The tool's result as the answer to `call`: notes placed on the transport, those whose
        time has passed (`now`) dropped."""
        span = call.end - call.start
        notes = [Timed(n.pitch, call.start + n.start - call.offset, min(n.duration, call.offset + span - n.start),
                       n.velocity)
                 for n in result.notes if not n.mute and call.offset - EPS <= n.start < call.offset + span - EPS]
        return Answer(call.number, call.start, call.end,
                      tuple(n for n in sorted(notes, key=lambda n: (n.start, n.pitch)) if n.start >= now - EPS))


class DuetSession(Session):
    """Call and response: answers a phrase once the player pauses; a new note cuts the answer."""

    mode = DUET

    def __init__(self, params: dict[str, Any], meter: TimeSignature, tempo: float) -> None:
        super().__init__(params, meter, tempo)
        self.active: dict[int, tuple[float, float]] = {}  # answer -> (start, end), until it is over
        self.cuts: dict[int, float] = {}

    def reset(self) -> None:
        super().reset()
        self.active.clear()
        self.cuts.clear()

    def interrupt(self, beat: float) -> list[Cut]:
        cuts = []
        for number, (start, end) in list(self.active.items()):
            if end <= beat:
                del self.active[number]
                self.cuts.pop(number, None)
            elif self.cuts.get(number, math.inf) > beat:
                self.cuts[number] = beat
                cuts.append(Cut(number, beat))
        return cuts

    def _step(self) -> float:
        return self.bar if self.params["quantize"] == "bar" else self.beat

    def _first_start(self, lead: float) -> float | None:
        """Where the answer to the phrase as it stands would start, or None while it goes on."""
        if self.held or not self.played:
            return None
        silence = max(n.end for n in self.played)
        return ceil_to(silence + self.params["wait"] + lead, self._step())

    def due(self, now: float, lead: float) -> float | None:
        start = self._first_start(lead)
        return None if start is None else start - lead

    def prepare(self, lead: float) -> Call | None:
        start = self._first_start(lead)
        return None if start is None else self._call(start)

    def decide(self, now: float, lead: float) -> Call | None:
        start = self._first_start(lead)
        if start is None or now < start - lead - EPS:
            return None
        if now > start - lead / 2:  # woken late: the next beat that can still be met
            start = ceil_to(now + lead, self._step())
        call = self._call(start)
        self.version += 1
        self.played.clear()
        self.counter = call.number
        self.active[call.number] = (call.start, call.end)
        return call

    def _call(self, start: float) -> Call:
        """The answer to the phrase as it stands, starting at `start`."""
        phrase = sorted(self.played, key=lambda n: n.start)
        origin = max(floor_to(phrase[0].start, self.bar), ceil_to(start - MAX_PHRASE_BARS * self.bar, self.bar))
        notes = [n for n in phrase if n.start >= origin - EPS] or phrase[-1:]
        origin = min(origin, floor_to(notes[0].start, self.bar))
        return Call(self.counter + 1, self.clip(notes, origin, start - origin, "phrase"), self._given(notes), start,
                    start + self.params["length"] * self.bar)

    def _given(self, notes: list[Played]) -> dict[str, Any]:
        """Continue's parameters: one variation after the phrase, in the phrase's key unless told."""
        p = self.params
        given = {"variations": 1, "include_primer": False, **{k: p[k] for k in (
            "length", "temperature", "type", "seed", "scale_root", "scale_mode", "drum_map", "bundle")}}
        if p["scale_root"] is None and p["type"] != "drums":
            key = estimate_key([Note(n.pitch, n.start, n.end - n.start, n.velocity) for n in notes])
            given["scale_root"], given["scale_mode"] = key.root, key.mode
        return {k: v for k, v in given.items() if v is not None}

    def answered(self, call: Call, result: Clip, now: float) -> Answer | None:
        answer = super().answered(call, result, now)
        cut = self.cuts.get(call.number)
        if cut is None:
            return answer
        if cut <= call.start + EPS:
            return None
        notes = tuple(Timed(n.pitch, n.start, min(n.duration, cut - n.start), n.velocity)
                      for n in answer.notes if n.start < cut - EPS)
        return Answer(answer.number, answer.start, cut, notes)


class FollowSession(Session):
    """Drums that follow: the next bar made from the last `bars` bars, for as long as notes come."""

    mode = FOLLOW

    def __init__(self, params: dict[str, Any], meter: TimeSignature, tempo: float) -> None:
        super().__init__(params, meter, tempo)
        self.last_bar = -math.inf  # the bar line of the latest decision

    def reset(self) -> None:
        super().reset()
        self.last_bar = -math.inf

    def _next_bar(self, now: float, lead: float) -> float | None:
        window = self.params["bars"] * self.bar
        if not self.held and (not self.played or max(n.end for n in self.played) < now - window):
            return None  # nothing played in the window: no drums until the player comes back
        bar = ceil_to(now + lead / 2, self.bar)  # a bar whose decision is a little overdue can still be met
        return bar if bar > self.last_bar + EPS else self.last_bar + self.bar

    def due(self, now: float, lead: float) -> float | None:
        bar = self._next_bar(now, lead)
        return None if bar is None else bar - lead

    def decide(self, now: float, lead: float) -> Call | None:
        bar = self._next_bar(now, lead)
        if bar is None or now < bar - lead - EPS:
            return None
        self.last_bar = bar
        origin = bar - self.params["bars"] * self.bar
        self.played = [n for n in self.played if n.end >= origin - self.bar]
        notes = [n for n in self.sounding(now) if origin - EPS <= n.start < bar]
        if not notes:
            return None
        self.counter += 1
        p = self.params
        given = {"variations": 1, **{k: p[k] for k in ("temperature", "seed", "drum_map", "bundle") if p[k] is not None}}
        return Call(self.counter, self.clip(notes, origin, bar - origin, "follow"), given, bar, bar + self.bar,
                    bar - self.bar - origin)


SESSIONS: dict[str, type[Session]] = {DUET.name: DuetSession, FOLLOW.name: FollowSession}
