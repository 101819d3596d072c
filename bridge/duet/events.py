"""What flows between a session, the tools and the wire: notes played, calls, answers, cuts.

Plain data, importable without NumPy, so the wire format and the clients need nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.clip import Clip


@dataclass(frozen=True)
class Played:
    """A note as the player played it, in transport beats."""

    pitch: int
    start: float
    end: float
    velocity: int


@dataclass(frozen=True)
class Timed:
    """A note of an answer, in transport beats."""

    pitch: int
    start: float
    duration: float
    velocity: int

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Call:
    """What to ask the mode's tool for: `clip` with `given` parameters; the result's notes from
    `offset` on become the answer's, moved to start at transport beat `start`, up to `end`."""

    number: int
    clip: Clip
    given: dict[str, Any]
    start: float
    end: float
    offset: float = 0.0


@dataclass(frozen=True)
class Answer:
    number: int
    start: float
    end: float
    notes: tuple[Timed, ...]


@dataclass(frozen=True)
class Notice:
    """What the player should know about answer `number` that is not an error (the tool's
    notice: the melody model heard only the top note of each chord, say)."""

    number: int
    text: str


@dataclass(frozen=True)
class Cut:
    """Answer `number` stops at `beat`: notes from there on are dropped, sounding ones end."""

    number: int
    beat: float
