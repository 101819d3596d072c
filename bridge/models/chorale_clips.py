"""Clips to the four-voice grid and back: which note is which voice, and the notes a roll plays.

Input voices come either one clip per voice (several clips: highest mean pitch = highest
voice) or in one clip, split by register: at each onset the notes that start are given, top
down, to the free voices whose last pitch is nearest, in order, so a held note keeps its voice
while the others move. `voices` names the voices the input holds ("SB" = soprano and bass);
"auto" takes as many voices as the clip sounds at once (on the 16th grid, so legato overlaps
do not count): one is the soprano (the bass if it lies below G3), two are the outer voices,
three are soprano, bass and the inner voice nearest in register.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from bridge.clip import Clip, Note, TimeSignature
from bridge.encodings import chorale
from bridge.meter import MeterError, MeterGrid
from bridge.tools import ToolError

SPQ = chorale.STEPS_PER_QUARTER
BASS_BELOW = 55  # a single line whose mean pitch is below G3 is taken as a bass line
DEFAULT_VELOCITY = 80


def _center(voice: str) -> float:
    low, high = chorale.RANGES[voice]
    return (low + high) / 2


def _span(note: Note) -> tuple[int, int]:
    start = int(math.floor(note.start * SPQ + 0.5))
    return start, max(start + 1, int(math.floor(note.end * SPQ + 0.5)))


def polyphony(notes: list[Note]) -> int:
    """The most notes sounding at once on the 16th grid."""
    changes: dict[int, int] = {}
    for note in notes:
        start, end = _span(note)
        changes[start] = changes.get(start, 0) + 1
        changes[end] = changes.get(end, 0) - 1
    count = most = 0
    for step in sorted(changes):
        count += changes[step]
        most = max(most, count)
    return most


def auto_voices(means: list[float]) -> str:
    """The voices parts with these mean pitches (top part first) most likely are."""
    k = len(means)
    if k == 1:
        return "B" if means[0] < BASS_BELOW else "S"
    candidates = [c for c in itertools.combinations(chorale.VOICES, k) if c[0] == "S" and c[-1] == "B"]
    return "".join(min(candidates, key=lambda c: sum(abs(m - _center(v)) for m, v in zip(means, c))))


def _split(notes: list[Note], k: int) -> list[list[Note]]:
    """One clip's notes as k parts, top part first (see the module docstring)."""
    pitches = [n.pitch for n in notes]
    last = [float(np.quantile(pitches, 1 - i / (k - 1))) if k > 1 else float(np.mean(pitches)) for i in range(k)]
    busy = [0] * k
    parts: list[list[Note]] = [[] for _ in range(k)]
    for start, group in itertools.groupby(sorted(notes, key=lambda n: (_span(n)[0], -n.pitch)), key=lambda n: _span(n)[0]):
        group = list(group)
        free = [v for v in range(k) if busy[v] <= start]
        if len(group) > len(free):
            raise ToolError(f"more notes sound at beat {start / SPQ:g} than the {k} voices the input is said to "
                            "hold; set voices to name them all", "bad_input")
        chosen = min(itertools.combinations(free, len(group)),
                     key=lambda vs: sum(abs(n.pitch - last[v]) for n, v in zip(group, vs)))
        for note, v in zip(group, chosen):
            parts[v].append(note)
            last[v], busy[v] = note.pitch, _span(note)[1]
    return parts


def assign(clips: list[Clip], voices: str) -> dict[str, list[Note]]:
    """Voice name -> its notes (the input's own Note objects, untouched)."""
    if len(clips) > 1:
        parts = sorted((c.audible_notes() for c in clips if c.audible_notes()), key=lambda ns: -np.mean([n.pitch for n in ns]))
    else:
        notes = clips[0].audible_notes()
        k = len(voices) if voices != "auto" else polyphony(notes)
        if k > len(chorale.VOICES):
            raise ToolError(f"the clip sounds {k} notes at once; harmonize takes at most four voices", "bad_input")
        parts = _split(notes, k) if notes else []
    if not parts:
        raise ToolError("the input has no notes to harmonize", "bad_input")
    names = voices if voices != "auto" else auto_voices([float(np.mean([n.pitch for n in p])) for p in parts])
    if len(names) != len(parts):
        raise ToolError(f"voices={voices} names {len(names)} voice(s) but the input holds {len(parts)}", "bad_input")
    return dict(zip(names, parts))


def octave_shift(given: dict[str, list[Note]]) -> int:
    """Whole octaves that move the given voices into their ranges best (ties: the smallest move)."""
    def outside(k: int) -> int:
        return sum(not chorale.RANGES[v][0] <= n.pitch + k <= chorale.RANGES[v][1] for v, ns in given.items() for n in ns)
    return min((0, -12, 12, -24, 24), key=lambda k: (outside(k), abs(k)))


def meter_of(clip: Clip) -> tuple[int, int]:
    """(bar steps, beat steps) on the 16th grid, or a bad_input ToolError."""
    meter: TimeSignature = clip.time_signature
    bar = meter.beats_per_bar * SPQ
    try:
        grid = MeterGrid.of(meter)
    except MeterError:
        grid = None
    if grid is None or bar != int(bar):
        raise ToolError(f"{meter} has no 16th-note grid; harmonize takes meters whose bars are whole 16ths",
                        "bad_input")
    return int(bar), grid.beat_steps * SPQ // grid.steps_per_quarter


def steps_of(clip: Clip) -> int:
    return max(1, math.ceil(round(clip.length * SPQ, 6)))


def grid(given: dict[str, list[Note]], steps: int, shift: int) -> np.ndarray:
    """[steps, 4] classes of the given voices (moved by `shift` semitones); others silent."""
    return chorale.roll([[(n.pitch + shift, *_span(n)) for n in given.get(v, [])] for v in chorale.VOICES], steps)


def voice_notes(column: np.ndarray, first: int, last: int, shift: int, velocity: int) -> list[Note]:
    """The notes of one voice's runs between steps first and last, moved back by `shift`."""
    return [Note(int(chorale.class_pitch(c)) - shift, start / SPQ, (end - start) / SPQ, velocity)
            for c, start, end in chorale.runs(column[first:last]) for start, end in [(start + first, end + first)]]


def erase(notes: list[Note], start: float, end: float) -> list[Note]:
    """Notes outside [start, end) beats: those starting inside go, one sounding into it is cut at start."""
    out = []
    for note in notes:
        if start <= note.start < end:
            continue
        if note.start < start < note.end:
            note = note._replace(duration=start - note.start)
        out.append(note)
    return out


def velocity_of(given: dict[str, list[Note]]) -> int:
    velocities = [n.velocity for ns in given.values() for n in ns]
    return int(np.median(velocities)) if velocities else DEFAULT_VELOCITY
