"""Beat annotations beside MIDI files: POP909's `beat_midi.txt`.

POP909's MIDI files carry placeholder meters (1/4, 2/4) and play slightly off their beat grid,
but each song folder has `beat_midi.txt`: one line per beat, `<seconds> <every 2nd beat>
<downbeat>`, extracted from the MIDI. Through the file's tempo map the downbeats give the
meter (beats between downbeats) and the bar phase (where bar 1 starts), and the beats' common
fractional position gives the offset of the whole performance from the MIDI beat grid.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from bridge.clip import TimeSignature
from bridge.midi_io import MidiScore

NAME = "beat_midi.txt"


def annotated(path: str) -> bool:
    return (Path(path).parent / NAME).is_file()


def read(score: MidiScore, path: str, stats: Counter) -> tuple[TimeSignature, float, float] | None:
    """(meter, first downbeat in beats, grid offset in beats) from the annotation beside `path`,
    or None when there is none or it cannot be used (counted in stats)."""
    side = Path(path).parent / NAME
    if not side.is_file():
        return None
    try:
        rows = np.array([[float(x) for x in line.split()[:3]] for line in side.read_text().splitlines() if line.strip()])
    except ValueError:
        stats["file skipped: unreadable beat annotation"] += 1
        return None
    if rows.ndim != 2 or rows.shape[1] < 3 or len(rows) < 8:
        stats["file skipped: unreadable beat annotation"] += 1
        return None
    beats = np.array([score.beats_at(t) for t in rows[:, 0]])
    shift = float(np.angle(np.exp(2j * np.pi * beats).mean()) / (2 * np.pi))  # circular mean of beat phases
    downbeats = np.flatnonzero(rows[:, 2] == 1.0)
    gaps = np.diff(downbeats)
    if len(gaps) == 0:
        stats["file skipped: no downbeats annotated"] += 1
        return None
    values, counts = np.unique(gaps, return_counts=True)
    per_bar = int(values[counts.argmax()])
    if per_bar not in (2, 3, 4) or counts.max() < 0.9 * len(gaps):
        stats[f"file skipped: downbeats every {per_bar} beats (meter unclear)"] += 1
        return None
    phase = float(np.round(beats[downbeats[0]] - shift)) % per_bar
    return TimeSignature(per_bar, 4), phase, shift
