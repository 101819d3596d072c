"""What a listener checks in a result, as numbers: does it keep the meter, the density, the key,
the drummer's sounds and feel? Used by `bench/quality.py` (model cards) and by tests.

Every function takes clips (or notes) in beats and the clip's meter; "beats" of a meter are
its own (dotted quarters in 6/8, halves in 3/2: `bridge.meter`), so a 6/8 continuation that
falls into straight quarters scores low on `beat_share`.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.clip import Clip, Note, Scale, TimeSignature
from bridge.drums import NUM_CLASSES, DrumMap
from bridge.meter import MeterGrid

TOLERANCE = 1 / 12  # beats: how close an onset must be to a beat or barline to count as on it


def _beats(meter: TimeSignature) -> tuple[float, float]:
    """(beat length, bar length) of a meter, in quarter notes."""
    grid = MeterGrid.of(meter)
    return grid.beat_steps / grid.steps_per_quarter, grid.bar_steps / grid.steps_per_quarter


def _on(starts: np.ndarray, period: float) -> np.ndarray:
    phase = np.mod(starts + TOLERANCE, period)
    return phase < 2 * TOLERANCE


def onsets(notes: list[Note]) -> np.ndarray:
    return np.unique(np.round([n.start for n in notes if not n.mute], 6))


def beat_share(notes: list[Note], meter: TimeSignature) -> float:
    """Share of distinct onsets on the meter's beats."""
    starts = onsets(notes)
    return float(_on(starts, _beats(meter)[0]).mean()) if len(starts) else 0.0


def bar_share(notes: list[Note], meter: TimeSignature) -> float:
    """Share of distinct onsets on barlines."""
    starts = onsets(notes)
    return float(_on(starts, _beats(meter)[1]).mean()) if len(starts) else 0.0


def density(notes: list[Note], beats: float) -> float:
    """Distinct onsets per quarter-note beat."""
    return len(onsets(notes)) / max(beats, 1e-9)


def median_duration(notes: list[Note]) -> float:
    return float(np.median([n.duration for n in notes])) if notes else 0.0


def estimate_key(notes: list[Note]) -> Scale:
    """The major or minor key whose scale holds the most note time (ties: the tonic heard most)."""
    weight = np.zeros(12)
    for n in notes:
        weight[n.pitch % 12] += n.duration
    best = max(((root, mode) for root in range(12) for mode in ("major", "minor")),
                key=lambda k: (sum(weight[p] for p in Scale(*k).pitch_classes), weight[k[0]]))
    return Scale(*best)


def in_key_share(notes: list[Note], key: Scale) -> float:
    return float(np.mean([key.contains(n.pitch) for n in notes])) if notes else 0.0


def voices_sounding(notes: list[Note], start: float, end: float, step: float = 0.25) -> np.ndarray:
    """How many notes sound at each grid point of [start, end)."""
    times = np.arange(start, end, step) + 1e-6
    return np.array([sum(n.start <= t < n.end for n in notes) for t in times])


# --- drums -----------------------------------------------------------------------------------

def classified(notes: list[Note], drum_map: DrumMap) -> list[tuple[int, Note]]:
    return [(c, n) for n in notes if not n.mute and (c := drum_map.classify(n.pitch)) is not None]


def pitch_identity(inputs: list[Note], outputs: list[Note], drum_map: DrumMap) -> float:
    """Share of output hits, in classes the input played, written with a pitch the input used
    for that class (rim stays rim, ride stays ride); 1.0 when there is nothing to check."""
    used: dict[int, set[int]] = {}
    for c, n in classified(inputs, drum_map):
        used.setdefault(c, set()).add(n.pitch)
    checked = [n.pitch in used[c] for c, n in classified(outputs, drum_map) if c in used]
    return float(np.mean(checked)) if checked else 1.0


def class_levels(notes: list[Note], drum_map: DrumMap) -> dict[int, float]:
    """Mean velocity per drum class."""
    levels: dict[int, list[int]] = {}
    for c, n in classified(notes, drum_map):
        levels.setdefault(c, []).append(n.velocity)
    return {c: float(np.mean(v)) for c, v in levels.items()}


def level_difference(inputs: list[Note], outputs: list[Note], drum_map: DrumMap) -> float:
    """Mean over the classes both play of |output mean velocity - input mean velocity|."""
    a, b = class_levels(inputs, drum_map), class_levels(outputs, drum_map)
    common = sorted(set(a) & set(b))
    return float(np.mean([abs(a[c] - b[c]) for c in common])) if common else 0.0


def swing_ratio(notes: list[Note], beat: float = 1.0) -> float | None:
    """Long-to-short ratio of the off-beat 8ths: onsets between 0.4 and 0.72 of a beat (the
    straight 8th at 0.5 up to past the triplet's 2/3, short of the 16th at 0.75) sit at p; the
    ratio is p / (1 - p): 1.0 straight, 2.0 triplet shuffle. None without off-beats."""
    p = offbeat_phase(np.mod(onsets(notes), beat) / beat)
    return None if p is None else p / (1 - p)


def offbeat_phase(phases) -> float | None:
    """Where in the beat the off-beat 8ths sit (0.5 straight, 2/3 a triplet shuffle): the
    median of the phases (0-1 of a beat) between 0.4 and 0.72; None without any there."""
    phases = np.asarray(phases, float)
    middle = phases[(phases > 0.4) & (phases < 0.72)]
    return float(np.median(middle)) if len(middle) else None


def kick_downbeat_share(notes: list[Note], meter: TimeSignature, length: float, drum_map: DrumMap) -> float:
    """Share of bars with a kick on their first beat."""
    bar = _beats(meter)[1]
    bars = max(1, int(round(length / bar)))
    kicks = [n.start for c, n in classified(notes, drum_map) if c == 0]
    hit = {int(round(s / bar)) for s in kicks if abs(s / bar - round(s / bar)) * bar < TOLERANCE}
    return len(hit & set(range(bars))) / bars


def class_histogram(notes: list[Note], drum_map: DrumMap) -> np.ndarray:
    counts = Counter(c for c, _ in classified(notes, drum_map))
    total = max(sum(counts.values()), 1)
    return np.array([counts[c] / total for c in range(NUM_CLASSES)])


def balance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two class histograms (0 = same balance, 1 = disjoint)."""
    return float(0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum())


def roll(notes: list[Note], steps: int, steps_per_quarter: int) -> np.ndarray:
    """[steps] onset counts on a grid (any pitch)."""
    out = np.zeros(steps)
    for n in notes:
        step = int(round(n.start * steps_per_quarter))
        if 0 <= step < steps:
            out[step] += 1
    return out


def self_similarity(notes: list[Note], length: float, shift_beats: float, steps_per_quarter: int = 4) -> float:
    """Cosine similarity of the onset roll with itself shifted by `shift_beats` quarter notes:
    a pattern that repeats every bar scores higher at a one-bar shift than at any other."""
    steps = int(round(length * steps_per_quarter))
    r = roll(notes, steps, steps_per_quarter)
    k = int(round(shift_beats * steps_per_quarter))
    if k <= 0 or k >= steps:
        return 0.0
    a, b = r[:-k], r[k:]
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm else 0.0


def shifted(notes: list[Note], beats: float) -> list[Note]:
    """The notes moved by `beats` (a continuation measured from its own first bar)."""
    return [n._replace(start=n.start + beats) for n in notes]


def new_notes(out: Clip, primer_length: float) -> list[Note]:
    return [n for n in out.notes if n.start >= primer_length - 1e-9]
