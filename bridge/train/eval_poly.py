"""Polyphonic Continue on held-out chorales: voices, key and register, written into the MODEL_CARD.

    python -m bridge.train.eval_poly bundles/poly_rnn --data ../shared/data/chorales [--write-card]

Issue #17's test: "Continue on a four-voice chorale clip returns a continuation with at least
three voices sounding together most of the time, in the primer's key (in-key share at least
the primer's minus 5 points) and register per voice". For every TEST chorale of the folder
(`pipeline.test_files`: never read by training nor by the eval that chose the checkpoint),
PRIMER_BARS bars with all four voices merged on one clip (as a Live track holds them) go to
the Continue tool at its defaults (type auto, 4 variations, 2 bars, temperature 1; seed = the
file's index), and every variation is scored on its continuation alone:
  * voices: the share of its 16th steps with three or more notes sounding; it passes above
    one half ("most of the time");
  * key: the primer's key is the diatonic scale (major or its relative minor: the same seven
    pitch classes) holding the largest share of its note time; the in-key share is the share
    of note time on that scale; it passes at the primer's share minus 5 points or more;
  * register: at each step the sounding notes are ranked from the top: the highest is the
    soprano, the lowest the bass, and where four or more sound, the second from the top the
    alto and the second from the bottom the tenor; it passes when each voice's mean pitch
    is within REGISTER_TOLERANCE semitones of the primer's.
Bach's own next bars after the same primers are scored the same way, beside the model: what
the measures give real music (Bach modulates, so his in-key share drops too). The same
`score` runs in the bundle test on a synthetic chorale, so the card and the test measure one
thing. Runs the NumPy serving model through the tool table, as a request does.
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.clip import Clip, Note, TimeSignature, quantize
from bridge.data import pipeline
from bridge.data.grid import meter_segments
from bridge.midi_io import read_midi_tracks
from bridge.model_store import ModelStore
from bridge.tools import TOOLS, ToolContext
from bridge.train.export import evaluation_command

PRIMER_BARS = 4
CONTINUE_BARS = 2  # Continue's default length
REGISTER_TOLERANCE = 5.0  # semitones: a fourth
VOICES = ("soprano", "alto", "tenor", "bass")
TITLE = "## Continue on held-out chorales"
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def _roll(notes: list[Note], start: float, end: float) -> list[list[int]]:
    """The pitches sounding at each 16th step of [start, end), from notes in beats."""
    steps = round((end - start) * 4)
    roll: list[list[int]] = [[] for _ in range(steps)]
    clip = Clip([Note(n.pitch, n.start - start, n.duration) for n in notes if n.start >= start - 1e-9], end - start)
    for g in quantize(clip, 4):
        for t in range(max(g.step, 0), min(g.end_step, steps)):
            roll[t].append(g.pitch)
    return roll


def key_of(roll: list[list[int]]) -> tuple[frozenset[int], float]:
    """The diatonic pitch-class set holding the most note time, and that share."""
    time = Counter(p % 12 for step in roll for p in step)
    total = max(sum(time.values()), 1)
    best = max(range(12), key=lambda root: sum(time[(root + d) % 12] for d in MAJOR))
    scale = frozenset((best + d) % 12 for d in MAJOR)
    return scale, sum(time[pc] for pc in scale) / total


def in_key(roll: list[list[int]], scale: frozenset[int]) -> float:
    pitches = [p for step in roll for p in step]
    return sum(p % 12 in scale for p in pitches) / max(len(pitches), 1)


def voice_means(roll: list[list[int]]) -> dict[str, float | None]:
    """Mean pitch of each voice ranked from the top at every step (see the module docstring)."""
    lines: dict[str, list[int]] = {v: [] for v in VOICES}
    for step in roll:
        ranked = sorted(step, reverse=True)
        if len(ranked) >= 2:
            lines["soprano"].append(ranked[0])
            lines["bass"].append(ranked[-1])
        if len(ranked) >= 4:
            lines["alto"].append(ranked[1])
            lines["tenor"].append(ranked[-2])
    return {v: statistics.fmean(p) if p else None for v, p in lines.items()}


@dataclass(frozen=True)
class Score:
    three_voices: float                 # share of the continuation's steps with >= 3 notes
    primer_in_key: float
    in_key: float
    register_error: dict[str, float]    # |mean pitch difference| per voice (inf: voice absent)

    @property
    def voices_ok(self) -> bool:
        return self.three_voices > 0.5

    @property
    def key_ok(self) -> bool:
        return self.in_key >= self.primer_in_key - 0.05

    @property
    def register_ok(self) -> bool:
        return all(e <= REGISTER_TOLERANCE for e in self.register_error.values())

    @property
    def ok(self) -> bool:
        return self.voices_ok and self.key_ok and self.register_ok


def score(primer: Clip, result: Clip) -> Score:
    """Score the continuation (the notes at or after the primer's end) against the primer."""
    before = _roll(list(primer.notes), 0.0, primer.length)
    after = _roll([n for n in result.notes if n.start >= primer.length - 1e-9], primer.length, result.length)
    scale, primer_share = key_of(before)
    ours, theirs = voice_means(after), voice_means(before)
    errors = {v: abs(ours[v] - theirs[v]) if ours[v] is not None and theirs[v] is not None else float("inf")
              for v in VOICES}
    return Score(sum(len(s) >= 3 for s in after) / max(len(after), 1), primer_share, in_key(after, scale), errors)


def chorale_excerpt(path: Path) -> tuple[Clip, Clip] | None:
    """PRIMER_BARS bars of a chorale's four voices on one clip, from its first full bar (a
    pickup bar is skipped), and the same clip followed by Bach's own next CONTINUE_BARS bars;
    None when the file is shorter or its meter has no grid."""
    score_ = read_midi_tracks(path)
    notes = [n for t in score_.tracks if not t.is_drum for n in t.notes]
    segments = meter_segments(score_, notes, Counter(), None)
    if not segments:
        return None
    meter = segments[0].meter
    bar = meter.beats_per_bar
    start = 0.0 if any(abs(n.start) < 1e-6 for n in notes) else bar
    cut, end = start + PRIMER_BARS * bar, start + (PRIMER_BARS + CONTINUE_BARS) * bar
    if segments[0].end < end:
        return None

    def clip(until: float) -> Clip:
        kept = [Note(n.pitch, n.start - start, min(n.end, until) - n.start, n.velocity)
                for n in notes if start - 1e-6 <= n.start < until]
        return Clip(kept, until - start, time_signature=TimeSignature(meter.numerator, meter.denominator),
                    name=path.stem)

    return clip(cut), clip(end)


def evaluate(bundles: Path, data: Path) -> tuple[list[Score], list[Score], int, int]:
    """Scores of every continuation of every usable test chorale, of Bach's own next bars
    after the same primers, and how many chorales were used of how many test files."""
    store = ModelStore.from_dir(bundles)
    files = pipeline.test_files(data)
    model, bach = [], []
    for i, (path, _) in enumerate(files):
        excerpt = chorale_excerpt(path)
        if excerpt is None:
            continue
        primer, real = excerpt
        model += [score(primer, clip) for clip in TOOLS["continue"]([primer], {"seed": i}, ToolContext(store))]
        bach.append(score(primer, real))
    return model, bach, len(bach), len(files)


def _column(s: list[Score]) -> list[str]:
    """The table's cells for one set of scores, row by row (value, then share passing)."""
    def passing(flag: str) -> str:
        return f"{100 * statistics.fmean(getattr(x, flag) for x in s):.0f}%"

    cells = [f"{statistics.fmean(x.three_voices for x in s):.3f} (median {statistics.median(x.three_voices for x in s):.3f})",
             passing("voices_ok"), f"{statistics.fmean(x.in_key for x in s):.3f}", passing("key_ok")]
    for v in VOICES:
        errors = [x.register_error[v] for x in s]
        finite = [e for e in errors if np.isfinite(e)]
        cells += [f"{statistics.fmean(finite):.2f}" if finite else "-",
                  f"{100 * sum(e <= REGISTER_TOLERANCE for e in errors) / len(s):.0f}%"]
    return cells + ["", passing("ok")]


def report(bundle_dir: Path, data: Path) -> str:
    """The markdown section for the model card; the bundle is served from its folder alone."""
    with tempfile.TemporaryDirectory() as tmp:  # only this bundle installed, so auto must pick it
        shutil.copytree(bundle_dir, Path(tmp) / bundle_dir.name)
        model, bach, chorales, tried = evaluate(Path(tmp), data)
    rows = ["3+ voices sounding: share of steps, mean", "... passes (above 0.5)",
            "in-key share of the continuation, mean", f"... passes (at least the primer's "
            f"{statistics.fmean(x.primer_in_key for x in bach):.3f} mean, minus 0.05, per primer)"]
    for v in VOICES:
        rows += [f"{v}: mean pitch off the primer's, semitones", f"... passes (within {REGISTER_TOLERANCE:g})"]
    rows += ["", "all three pass"]
    lines = [TITLE, "",
             f"Computed by `python -m bridge.train.eval_poly {bundle_dir} --data {data}` with the NumPy model: "
             f"{chorales} held-out test chorales ({tried} test files; those under {PRIMER_BARS + CONTINUE_BARS} "
             f"bars skipped), a {PRIMER_BARS}-bar primer with the four voices on one clip, Continue at its "
             f"defaults (type auto, 4 variations, {CONTINUE_BARS} bars, temperature 1): {len(model)} "
             f"continuations, beside Bach's own next {CONTINUE_BARS} bars after the same primers.", "",
             f"| measure | model | Bach's next {CONTINUE_BARS} bars |", "|---|---|---|"]
    lines += [f"| {row} | {ours} | {his} |" for row, ours, his in zip(rows, _column(model), _column(bach)) if row]
    return "\n".join(lines) + "\n\n"


def main(argv: list[str] | None = None) -> None:
    evaluation_command(argv, __doc__, TITLE, report, ("data", "the chorale folder the model was trained with"))


if __name__ == "__main__":
    main()
