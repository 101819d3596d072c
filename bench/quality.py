"""Does every tool keep the music it is given? Runs the tools at their defaults on held-out test
files of each data set, per meter, and prints what a listener would check:

    .venv/bin/python bench/quality.py [--bundles bundles] [--files 20] [--card NAME ...]

melody (Essen folk songs, POP909 melodies; primer = the first 4 bars of a song's first meter):
  continue     onsets on the meter's beats and on barlines, continuation / primer; note density
               and median duration ratios; in-key share (key estimated from the primer) and the
               primer's own; variations that added no notes
  generate     the same onset shares and density for clips generated in the meter, beside the
               test songs' own 4-bar windows
  interpolate  the same for the path between two test songs of one meter
drums (Groove MIDI Dataset test split: 4/4 as played, 3/4 and 6/8 made from it as in training,
bridge.data.drum_meters):
  continue     the drummer's pitches kept, per-class velocity level difference, swing ratio
               difference (continuation vs primer; all primers, and shuffled grooves alone:
               GMD beats, not fills, with a swing ratio of 1.4 or more), kick
               on the bar's first beat
  groove       per-class velocity level difference (output vs input), pitches kept
  drumify      pitches kept (drum input); on 4/4 and other test melodies: kick on the first
               beat of the bar, class balance (total variation distance to GMD's own), and the
               self-similarity at a one-bar shift against a 4-beat shift
Test files are never used in training or checkpoint choice (bridge.data.pipeline's split).
Meters marked * are test tunes of the meter with half the bar written in notes twice as long
(3/4 tunes as 3/2, 2/4 as 2/2), where too few test songs are in that meter.
With --card, each named bundle's MODEL_CARD.md gets the rows of the tools it serves.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge import music_stats as S  # noqa: E402
from bridge.bundle import load_bundle, save_bundle  # noqa: E402
from bridge.clip import Clip, Note, TimeSignature  # noqa: E402
from bridge.data import drum_meters, pipeline  # noqa: E402
from bridge.data.grid import drum_hits, meter_segments  # noqa: E402
from bridge.drums import GM_DRUM_MAP  # noqa: E402
from bridge.meter import MeterError, MeterGrid  # noqa: E402
from bridge.midi_io import read_midi_tracks  # noqa: E402
from bridge.model_store import ModelStore  # noqa: E402
from bridge.tools import TOOLS, ToolContext, ToolError  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
MELODY_METERS = ("2/4", "3/4", "4/4", "6/8", "3/8", "2/2", "3/2", "6/4")
DRUM_METERS = ("4/4", "3/4", "6/8")
PRIMER_BARS = 4
SHUFFLE = 1.4  # a groove whose off-beat 8ths sit this late (swing ratio) counts as a shuffle


def _is_groove(clip: Clip) -> bool:
    """A GMD beat, not a fill: a fill's few off-beats scatter over the beat (a roll, a pickup),
    so its swing ratio says nothing about a feel to keep; GMD names each file beat or fill."""
    return "_beat_" in clip.name
SECTION = "## Quality on held-out test files (bench/quality.py)"


@dataclass
class Table:
    """Rows of one tool: meter -> metric -> values (averaged when printed); which bundle served."""

    tool: str
    metrics: tuple[str, ...]
    rows: dict[str, dict[str, list[float]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    served_by: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, meter: str, **values: float | None) -> None:
        for key, value in values.items():
            if value is not None:
                self.rows[meter][key].append(float(value))

    def lines(self, only: str | None = None) -> list[str]:
        head = f"| {self.tool} | meter | n | " + " | ".join(self.metrics) + " |"
        out = [head, "|" + "---|" * (len(self.metrics) + 3)]
        for meter in sorted(self.rows, key=lambda m: (MeterGrid.of(m.rstrip("*")).bar_steps, m)):
            if only and only not in self.served_by[meter]:
                continue
            values = self.rows[meter]
            n = max((len(v) for v in values.values()), default=0)
            cells = []
            for key in self.metrics:
                v = values.get(key)
                cells.append(f"{np.sum(v):.0f}" if v and key.startswith("empty") else f"{np.mean(v):.3f}" if v else "-")
            out.append(f"| {', '.join(sorted(self.served_by[meter])) or '-'} | {meter} | {n} | " + " | ".join(cells) + " |")
        return out


def melody_primers(files: list[Path], per_meter: int) -> dict[str, list[Clip]]:
    """meter -> clips of a test song's first bars in that meter (from its first bar with notes:
    the primer's PRIMER_BARS bars and up to as many after), from the MELODY track."""
    out: dict[str, list[Clip]] = defaultdict(list)
    for path in files:
        try:
            score = read_midi_tracks(path)
        except Exception:  # noqa: BLE001 - a test file we cannot read is skipped, as training skips it
            continue
        tracks = [t for t in score.tracks if t.name.casefold() == "melody" and t.notes]
        if not tracks:
            continue
        stats: dict = defaultdict(int)
        for segment in meter_segments(score, list(tracks[0].notes), stats, str(path)):
            meter = str(segment.meter)
            if meter not in MELODY_METERS or len(out[meter]) >= per_meter:
                continue
            bar = segment.meter.beats_per_bar
            start = next((k * bar for k in range(int((segment.end - segment.start) / bar))
                          if any(segment.start + k * bar <= n.start - segment.shift < segment.start + (k + 1) * bar
                                 for n in tracks[0].notes)), None)
            if start is None:
                continue
            # Up to twice the primer; a short song (3/2 tunes often are) needs the primer and 2 bars.
            span = min(2 * PRIMER_BARS, int((segment.end - segment.start - start) / bar)) * bar
            if span < (PRIMER_BARS + 2) * bar:
                continue
            origin = segment.start + start + segment.shift
            notes = [Note(n.pitch, n.start - origin, n.duration, n.velocity) for n in tracks[0].notes
                     if origin - 1e-6 <= n.start < origin + span]
            out[meter].append(Clip(notes, span, 100.0, segment.meter, None, path.stem))
            break
    # Long-note meters are rare in the test songs (folk has 3 with a 3/2 stretch, none long enough):
    # the same tunes written in halves check them too, marked with a star.
    for short, long in (("3/4", "3/2"), ("2/4", "2/2")):
        if len(out[long]) < per_meter // 2:
            meter = TimeSignature(*map(int, long.split("/")))
            out[long + "*"] = [Clip([n._replace(start=2 * n.start, duration=2 * n.duration) for n in c.notes],
                                    2 * c.length, 100.0, meter, None, c.name) for c in out[short]]
    return {meter: clips for meter, clips in out.items() if clips}


def drum_clips(files: list[Path], per_meter: int) -> dict[str, list[Clip]]:
    """meter -> 4-bar drum clips of GMD test files: as played (4/4 and the few real others) and
    made into 3/4 and 6/8 as in training."""
    out: dict[str, list[Clip]] = defaultdict(list)
    for path in files:
        score = read_midi_tracks(path)
        stats: dict = defaultdict(int)
        notes, hits = drum_hits(score, stats)
        if not notes:
            continue
        for segment in meter_segments(score, notes, stats):
            moved = [(c, n.start - segment.shift, n) for c, n in hits if segment.start <= n.start < segment.end]
            versions = [(segment.meter, moved, "")] + drum_meters.variants(moved, segment.meter, segment.start, 0)
            for meter, version, _ in versions:
                key = str(meter)
                if key not in DRUM_METERS or len(out[key]) >= per_meter:
                    continue
                length = 4 * meter.beats_per_bar
                # Skip a count-in: start at the first bar with a hit.
                first = min((start for _, start, _ in version), default=None)
                if first is None:
                    continue
                origin = segment.start + np.floor((first - segment.start) / meter.beats_per_bar) * meter.beats_per_bar
                clip_notes = [Note(n.pitch, start - origin, n.duration, n.velocity) for _, start, n in version
                              if origin <= start < origin + length]
                if len(clip_notes) >= 16:
                    out[key].append(Clip(clip_notes, length, 100.0, meter, None, path.stem))
            break
    return {meter: clips for meter, clips in out.items() if clips}


class Runner:
    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.tables = {
            "continue melody": Table("continue melody", ("beat share ratio", "bar share ratio", "density ratio",
                                                         "duration ratio", "in key", "primer in key", "empty")),
            "generate melody": Table("generate melody", ("beat share", "data beat share", "bar share",
                                                         "data bar share", "density ratio")),
            "interpolate melody": Table("interpolate melody", ("beat share", "inputs beat share", "bar share",
                                                               "inputs bar share")),
            "continue drums": Table("continue drums", ("pitches kept", "level diff", "swing diff",
                                                       "shuffle swing diff", "kick on downbeat",
                                                       "primer kick on downbeat")),
            "groove": Table("groove", ("pitches kept", "level diff")),
            "drumify drums": Table("drumify drums", ("pitches kept", "kick on downbeat", "balance distance")),
            "drumify melody": Table("drumify melody", ("kick on downbeat", "balance distance", "similarity 1 bar",
                                                       "similarity 4 beats")),
        }

    def run(self, tool: str, clips: list[Clip], **given) -> tuple[list[Clip], str, list[str]]:
        """The tool's outputs, the bundle that served, and the notices."""
        ctx = ToolContext(self.store)
        kind = given.get("type", "drums" if tool in ("groove", "drumify") else "melody")
        model = self.store.require(tool, kind, None, clips[0].time_signature if clips else None)
        name = next(item.name for item in self.store.loaded if item.model is model)
        return TOOLS[tool](clips, given, ctx), name, ctx.notices

    def melody(self, primers: dict[str, list[Clip]]) -> None:
        for meter, clips in primers.items():
            ts = clips[0].time_signature
            for clip in clips:
                primer_length = PRIMER_BARS * ts.beats_per_bar
                primer = Clip([n for n in clip.notes if n.start < primer_length], primer_length, 100.0, ts, None,
                              clip.name)
                if len(primer.notes) < 4:
                    continue
                key = S.estimate_key(list(primer.notes))
                try:
                    outs, name, _ = self.run("continue", [primer], type="melody", seed=0)
                except ToolError:
                    continue
                table = self.tables["continue melody"]
                table.served_by[meter].add(name)
                p_notes = list(primer.notes)
                base_beat, base_bar = S.beat_share(p_notes, ts), S.bar_share(p_notes, ts)
                for out in outs:
                    new = S.new_notes(out, primer.length)
                    added = out.length - primer.length
                    if not new:
                        table.add(meter, empty=1.0)
                        continue
                    table.add(meter, **{
                        "empty": 0.0,
                        "beat share ratio": S.beat_share(new, ts) / base_beat if base_beat else None,
                        "bar share ratio": S.bar_share(new, ts) / base_bar if base_bar else None,
                        "density ratio": S.density(new, added) / S.density(p_notes, primer.length),
                        "duration ratio": S.median_duration(new) / S.median_duration(p_notes),
                        "in key": S.in_key_share(new, key), "primer in key": S.in_key_share(p_notes, key)})
            self._generate(meter, clips)
            self._interpolate(meter, clips)

    def _generate(self, meter: str, clips: list[Clip]) -> None:
        ts = clips[0].time_signature
        context = Clip((), 4 * ts.beats_per_bar, 100.0, ts)
        try:
            outs, name, _ = self.run("generate", [context], type="melody", seed=0, bars=4)
        except ToolError:
            return
        table = self.tables["generate melody"]
        table.served_by[meter].add(name)
        data = [n for c in clips for n in c.notes if n.start < 4 * ts.beats_per_bar]
        data_density = np.mean([S.density([n for n in c.notes if n.start < 4 * ts.beats_per_bar],
                                          4 * ts.beats_per_bar) for c in clips])
        for out in outs:
            notes = list(out.notes)
            if notes:
                table.add(meter, **{"beat share": S.beat_share(notes, ts), "data beat share": S.beat_share(data, ts),
                                    "bar share": S.bar_share(notes, ts), "data bar share": S.bar_share(data, ts),
                                    "density ratio": S.density(notes, out.length) / data_density})

    def _interpolate(self, meter: str, clips: list[Clip]) -> None:
        ts = clips[0].time_signature
        table = self.tables["interpolate melody"]
        four = 4 * ts.beats_per_bar
        pieces = [Clip([n for n in c.notes if n.start < four], four, 100.0, ts, None, c.name) for c in clips]
        for a, b in zip(pieces[0::2], pieces[1::2]):
            try:
                outs, name, _ = self.run("interpolate", [a, b], type="melody", seed=0)
            except ToolError:
                return
            table.served_by[meter].add(name)
            inputs = list(a.notes) + list(b.notes)
            for out in outs:
                notes = list(out.notes)
                if notes:
                    table.add(meter, **{"beat share": S.beat_share(notes, ts), "inputs beat share": S.beat_share(inputs, ts),
                                        "bar share": S.bar_share(notes, ts), "inputs bar share": S.bar_share(inputs, ts)})

    def drums(self, clips_by_meter: dict[str, list[Clip]], balance: np.ndarray) -> None:
        drum_map = GM_DRUM_MAP
        for meter, clips in clips_by_meter.items():
            ts = clips[0].time_signature
            for clip in clips:
                half = clip.length / 2
                primer = Clip([n for n in clip.notes if n.start < half], half, 100.0, ts, None, clip.name)
                p_notes = list(primer.notes)
                try:
                    outs, name, _ = self.run("continue", [primer], type="drums", seed=0)
                    table = self.tables["continue drums"]
                    table.served_by[meter].add(name)
                    beat = MeterGrid.of(ts).beat_steps / MeterGrid.of(ts).steps_per_quarter
                    swing_in = S.swing_ratio(p_notes, min(beat, 1.0))
                    for out in outs:
                        new = S.new_notes(out, primer.length)
                        swing_out = S.swing_ratio(new, min(beat, 1.0))
                        table.add(meter, **{
                            "pitches kept": S.pitch_identity(p_notes, new, drum_map),
                            "level diff": S.level_difference(p_notes, new, drum_map),
                            "swing diff": abs(swing_out - swing_in) if swing_in and swing_out else None,
                            "shuffle swing diff": abs(swing_out - swing_in)
                            if swing_in and swing_out and swing_in >= SHUFFLE and _is_groove(clip) else None,
                            "kick on downbeat": S.kick_downbeat_share(S.shifted(new, -primer.length), ts,
                                                                      out.length - primer.length, drum_map),
                            "primer kick on downbeat": S.kick_downbeat_share(p_notes, ts, primer.length, drum_map)})
                except ToolError:
                    pass
                for tool, key in (("groove", "groove"), ("drumify", "drumify drums")):
                    try:
                        outs, name, _ = self.run(tool, [clip], seed=0)
                    except ToolError:
                        continue
                    self.tables[key].served_by[meter].add(name)
                    for out in outs:
                        row = {"pitches kept": S.pitch_identity(list(clip.notes), list(out.notes), drum_map)}
                        if tool == "groove":
                            row["level diff"] = S.level_difference(list(clip.notes), list(out.notes), drum_map)
                        else:
                            row["kick on downbeat"] = S.kick_downbeat_share(list(out.notes), ts, out.length, drum_map)
                            row["balance distance"] = S.balance_distance(S.class_histogram(list(out.notes), drum_map),
                                                                         balance)
                        self.tables[key].add(meter, **row)

    def drumify_melodies(self, primers: dict[str, list[Clip]], balance: np.ndarray) -> None:
        for meter, clips in primers.items():
            if meter not in DRUM_METERS:
                continue
            ts = clips[0].time_signature
            for clip in clips:
                try:
                    outs, name, _ = self.run("drumify", [clip], seed=0)
                except ToolError:
                    break
                table = self.tables["drumify melody"]
                table.served_by[meter].add(name)
                for out in outs:
                    notes = list(out.notes)
                    table.add(meter, **{
                        "kick on downbeat": S.kick_downbeat_share(notes, ts, out.length, GM_DRUM_MAP),
                        "balance distance": S.balance_distance(S.class_histogram(notes, GM_DRUM_MAP), balance),
                        "similarity 1 bar": S.self_similarity(notes, out.length, ts.beats_per_bar),
                        "similarity 4 beats": S.self_similarity(notes, out.length, 4.0)})


def gmd_balance(root: Path, limit: int = 200) -> np.ndarray:
    """The class balance of GMD's training files (the data the drum models learn from)."""
    listed = pipeline.listed_splits(root) or {}
    files = [root / rel for rel, split in sorted(listed.items()) if split == "train"][:limit]
    counts = np.zeros(9)
    for path in files:
        stats: dict = defaultdict(int)
        _, hits = drum_hits(read_midi_tracks(path), stats)
        for c, _ in hits:
            counts[c] += 1
    return counts / max(counts.sum(), 1)


def write_card(bundle_dir: Path, tables: list[Table], name: str) -> None:
    bundle = load_bundle(bundle_dir)
    lines = [SECTION, "", "Rows of the tools this bundle served, at default settings, seed 0, on held-out test "
             "files (never used to train or choose a checkpoint). Ratios are continuation / primer; "
             "\"level diff\" is the mean |output - input| velocity per drum class.", ""]
    for table in tables:
        rows = table.lines(only=name)
        if len(rows) > 2:
            lines += rows + [""]
    card = (bundle_dir / "MODEL_CARD.md").read_text().split("\n" + SECTION)[0].rstrip("\n") + "\n\n"
    save_bundle(bundle_dir, bundle.config, bundle.weights, card + "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", type=Path, default=ROOT / "bundles")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding folk/, pop909/ and groove/")
    parser.add_argument("--files", type=int, default=20, help="test files per data set and meter")
    parser.add_argument("--card", action="append", default=[], help="write the rows into this bundle's card")
    parser.add_argument("--only", choices=("melody", "drums"), help="run the melody or the drum tools alone")
    args = parser.parse_args(argv)
    store = ModelStore.from_dir(args.bundles)
    runner = Runner(store)
    melody_files = [p for folder in ("folk", "pop909") for p, _ in pipeline.test_files(args.data / folder)]
    primers = melody_primers(melody_files, args.files)
    if args.only != "drums":
        runner.melody(primers)
    if args.only != "melody":
        balance = gmd_balance(args.data / "groove")
        drum_files = [p for p, _ in pipeline.test_files(args.data / "groove")]
        runner.drums(drum_clips(drum_files, args.files), balance)
        runner.drumify_melodies(primers, balance)
    print(f"# quality at default settings on test files ({args.files} per data set and meter)\n")
    for table in runner.tables.values():
        if table.rows:
            print("\n".join(table.lines()) + "\n")
    for name in args.card:
        write_card(args.bundles / name, list(runner.tables.values()), name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
