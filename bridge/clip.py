"""The clip model every tool speaks: notes in beats, plus the musical context Live gives us.

A clip is what a producer sees in a Live clip slot: notes (pitch, start and duration in beats,
velocity, mute and Live 11's extras), a length, and the set's tempo, meter and scale. Tools take
clips and return clips; models see a quantized grid. `quantize` keeps each note's offset from
the grid so that timing a model did not touch can be put back exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

DEFAULT_MAX_NOTES = 10_000

# Intervals (semitones above the root) of the modes a scale may name. Live 12's scale names
# map onto these; anything else is refused with the list below.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic_minor": (0, 2, 3, 5, 7, 9, 11),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}


class ClipError(ValueError):
    """Raised for a clip that cannot be used; the message is shown to the user as is."""


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ClipError(f"{name} must be a finite number, got {value}")
    return value


class Note(NamedTuple):
    """One note. Times are in beats (quarter notes), as Live's note API gives them.

    A named tuple in wire order rather than a frozen dataclass: a result of a few hundred notes
    is built, checked and sent note by note, and a tuple is made by one C call (0.1 us, where
    the dataclass took 0.45) and flattened for the wire without touching each field by name.
    Change a field with `note._replace(...)`."""

    pitch: int
    start: float
    duration: float
    velocity: int = 100
    mute: bool = False
    # Live 11 extras: we never interpret them, only carry them through.
    probability: float = 1.0
    velocity_deviation: float = 0.0
    release_velocity: int = 64

    @property
    def end(self) -> float:
        return self.start + self.duration

    def validate(self) -> None:
        """Raise ClipError naming the first field that is out of range."""
        pitch, start, duration, velocity, _, probability, deviation, release = self  # one unpack, not eight lookups
        try:  # one expression for a note that is plainly fine: a result checks thousands of them
            if (type(pitch) is int and 0 <= pitch <= 127 and type(velocity) is int and 1 <= velocity <= 127
                    and 0 <= start < math.inf and 0 < duration < math.inf and 0.0 <= probability <= 1.0
                    and -127 <= deviation <= 127 and type(release) is int and 0 <= release <= 127):
                return
        except TypeError:  # a value that does not compare: the checks below name it
            pass
        if not isinstance(self.pitch, int) or not 0 <= self.pitch <= 127:
            raise ClipError(f"pitch must be an integer 0-127, got {self.pitch!r}")
        if not isinstance(self.velocity, int) or not 1 <= self.velocity <= 127:
            raise ClipError(f"velocity must be an integer 1-127, got {self.velocity!r}")
        start = _finite("start", self.start)
        if start < 0:
            raise ClipError(f"start must be >= 0 beats, got {start}")
        if _finite("duration", self.duration) <= 0:
            raise ClipError(f"duration must be > 0 beats, got {self.duration}")
        if not 0.0 <= _finite("probability", self.probability) <= 1.0:
            raise ClipError(f"probability must be 0-1, got {self.probability}")
        if not -127 <= _finite("velocity_deviation", self.velocity_deviation) <= 127:
            raise ClipError(f"velocity_deviation must be -127..127, got {self.velocity_deviation}")
        if not isinstance(self.release_velocity, int) or not 0 <= self.release_velocity <= 127:
            raise ClipError(f"release_velocity must be an integer 0-127, got {self.release_velocity!r}")


@dataclass(frozen=True)
class TimeSignature:
    """Any n/d meter. Bars are measured in quarter-note beats, as Live measures clip length."""

    numerator: int = 4
    denominator: int = 4

    def validate(self) -> None:
        if not isinstance(self.numerator, int) or not 1 <= self.numerator <= 99:
            raise ClipError(f"time signature numerator must be 1-99, got {self.numerator!r}")
        if self.denominator not in (1, 2, 4, 8, 16, 32):
            raise ClipError(f"time signature denominator must be 1, 2, 4, 8, 16 or 32, got {self.denominator!r}")

    @property
    def beats_per_bar(self) -> float:
        """Quarter-note beats in one bar: 4/4 -> 4, 3/4 -> 3, 6/8 -> 3, 7/8 -> 3.5."""
        return self.numerator * 4.0 / self.denominator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class Scale:
    """A key: root pitch class (0 = C) and a mode name from MODES."""

    root: int = 0
    mode: str = "major"

    def validate(self) -> None:
        if not isinstance(self.root, int) or not 0 <= self.root <= 11:
            raise ClipError(f"scale root must be a pitch class 0-11, got {self.root!r}")
        if self.mode not in MODES:
            raise ClipError(f"unknown scale mode {self.mode!r}; known: {', '.join(MODES)}")

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.root + i) % 12 for i in MODES[self.mode])

    def contains(self, pitch: int) -> bool:
        return pitch % 12 in self.pitch_classes


@dataclass(frozen=True)
class Clip:
    """Notes plus the context a model needs to write music that fits the set."""

    notes: tuple[Note, ...] = ()
    length: float = 4.0
    tempo: float = 120.0
    time_signature: TimeSignature = field(default_factory=TimeSignature)
    scale: Scale | None = None
    name: str = ""

    def __post_init__(self) -> None:
        # Accept any iterable of notes but store a tuple, so clips stay hashable and immutable.
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def beats_per_bar(self) -> float:
        return self.time_signature.beats_per_bar

    @property
    def bars(self) -> float:
        return self.length / self.beats_per_bar

    def validate(self, max_notes: int = DEFAULT_MAX_NOTES, notes: bool = True) -> "Clip":
        """Check every field (each note's too unless not `notes`: see validate_notes); return
        self so calls chain. Raise ClipError with a clear message."""
        if len(self.notes) > max_notes:
            raise ClipError(f"clip has {len(self.notes)} notes, more than the limit of {max_notes}")
        if _finite("length", self.length) <= 0:
            raise ClipError(f"clip length must be > 0 beats, got {self.length}")
        if not 1.0 <= _finite("tempo", self.tempo) <= 999.0:
            raise ClipError(f"tempo must be 1-999 bpm, got {self.tempo}")
        self.time_signature.validate()
        if self.scale is not None:
            self.scale.validate()
        if notes:
            self.validate_notes()
        return self

    def validate_notes(self) -> None:
        """Check each note, apart from the rest of the clip: the server checks a result's notes
        clip by clip as it sends them (bridge.worker), its note counts before any."""
        for i, note in enumerate(self.notes):
            try:
                note.validate()
            except ClipError as exc:
                raise ClipError(f"note {i}: {exc}") from None

    def with_notes(self, notes, **changes) -> "Clip":
        """A copy with other notes (sorted by start, then pitch) and any other field changed."""
        return replace(self, notes=tuple(sorted(notes, key=lambda n: (n.start, n.pitch))), **changes)

    def sorted_notes(self) -> list[Note]:
        return sorted(self.notes, key=lambda n: (n.start, n.pitch))

    def audible_notes(self) -> list[Note]:
        """Unmuted notes that start inside the clip: what a listener hears and a model sees."""
        return [n for n in self.sorted_notes() if not n.mute and n.start < self.length]


@dataclass(frozen=True)
class GridNote:
    """A note on a grid of `steps_per_quarter` steps, remembering how far it sat off the grid.

    `offset` is (real start - grid start) in steps, in [-0.5, 0.5); `source` is the original
    note, so a tool that only appends or re-times can hand untouched notes back exactly.
    """

    pitch: int
    step: int
    end_step: int
    velocity: int
    offset: float = 0.0
    source: Note | None = None


def quantize(clip: Clip, steps_per_quarter: int = 4, include_muted: bool = False) -> list[GridNote]:
    """Snap note starts and ends to the grid; each note lasts at least one step."""
    notes = clip.sorted_notes() if include_muted else clip.audible_notes()
    grid = []
    for note in notes:
        pos = note.start * steps_per_quarter
        step = int(math.floor(pos + 0.5))
        end = max(step + 1, int(math.floor(note.end * steps_per_quarter + 0.5)))
        grid.append(GridNote(note.pitch, step, end, note.velocity, pos - step, note))
    return grid


def unquantize(grid: list[GridNote], steps_per_quarter: int = 4, keep_offsets: bool = True) -> list[Note]:
    """Turn grid notes back into notes; with keep_offsets each start moves back off the grid."""
    notes = []
    for g in grid:
        offset = g.offset if keep_offsets else 0.0
        start = max(0.0, (g.step + offset) / steps_per_quarter)
        end = g.end_step / steps_per_quarter
        base = g.source or Note(g.pitch, start, 1.0)
        notes.append(base._replace(pitch=g.pitch, start=start, duration=max(end - start, 1e-3),
                                   velocity=g.velocity))
    return notes
