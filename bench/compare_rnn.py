"""Two events-RNN bundles on the same windows: per data folder, split and meter, the NLL per
step and accuracy each gives (what a model card reports), so a retrained bundle is compared
with the one it replaces on the same files:

    .venv/bin/python bench/compare_rnn.py OLD_BUNDLE NEW_BUNDLE --data ../shared/data/pop909 [--data ...]

Windows are cut by the NEW bundle's converter (for meter-aware bundles: each meter on its own
grid, windows from barlines); a 4/4-only bundle is scored on the 4/4 windows alone (it reads
them on 16ths with its step counters, as it always does). Splits: eval (validation) and test.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.bundle import load_bundle, save_bundle  # noqa: E402
from bridge.data import converters, pipeline  # noqa: E402
from bridge.meter import MeterGrid  # noqa: E402
from bridge.midi_io import read_midi_tracks  # noqa: E402
from bridge.models.events_rnn import EventsRNN  # noqa: E402

SECTION = "## Against the bundle it replaced"


def windows(bundle, folder: Path, split: str, limit: int) -> dict[tuple[int, ...], list[dict]]:
    """grid -> examples of the folder's files in `split`, as the bundle's converter cuts them."""
    cfg = bundle.config
    args = dict(cfg["converter_args"])
    if "transpositions" in args:  # melody converters transpose training windows; score the music as written
        args["transpositions"] = 0
    converter = converters.get(cfg["converter"], **args)
    listed = pipeline.listed_splits(folder)
    out: dict[tuple[int, ...], list[dict]] = defaultdict(list)
    files = [p for p in pipeline.midi_files(folder)
             if pipeline.split_of(p.relative_to(folder).as_posix(), listed) == split][:limit]
    for path in files:
        rel = path.relative_to(folder).as_posix()
        for example in converter.examples(read_midi_tracks(path), {"path": rel, "file": str(path), "split": split,
                                                                   "seed": 0}):
            out[tuple(int(v) for v in example.get("grid", (4, 16, 4)))].append(example)
    return out


def score(model: EventsRNN, examples: list[dict], meter_aware: bool) -> tuple[float, float, int]:
    """(NLL per step, accuracy, steps) over the examples' unpadded steps."""
    total, correct, steps = 0.0, 0.0, 0
    for start in range(0, len(examples), 64):
        chunk = examples[start:start + 64]
        events = np.stack([e["events"] for e in chunk]).astype(np.int64)
        lengths = np.array([int(e.get("length", events.shape[1])) for e in chunk])
        grids = np.stack([e["grid"] for e in chunk]) if meter_aware else None
        nll, accuracy = model.nll(events, grids, lengths)
        n = int((lengths - 1).sum())
        total, correct, steps = total + nll * n, correct + accuracy * n, steps + n
    return total / max(steps, 1), correct / max(steps, 1), steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--files", type=int, default=400, help="at most this many files per folder and split")
    parser.add_argument("--card", action="store_true", help="write the table into the NEW bundle's card")
    args = parser.parse_args(argv)
    old, new = load_bundle(args.old), load_bundle(args.new)
    models = [(b.name, EventsRNN.from_bundle(b), bool(b.config["hparams"].get("meter"))) for b in (old, new)]
    four = MeterGrid.of("4/4")
    lines = [f"| data | split | grid | windows | before NLL / acc | this bundle NLL / acc |", "|---|---|---|---|---|---|"]
    for folder in args.data:
        for split in ("eval", "test"):
            for key, examples in sorted(windows(new, folder, split, args.files).items()):
                grid = MeterGrid(*key)
                cells = []
                for _, model, meter_aware in models:
                    if not meter_aware and grid != four:
                        cells.append("-")
                        continue
                    nll, accuracy, _ = score(model, examples, meter_aware)
                    cells.append(f"{nll:.4f} / {accuracy:.4f}")
                label = f"bar {grid.bar_steps}, beat {grid.beat_steps} (spq {grid.steps_per_quarter})"
                lines.append(f"| {folder.name} | {split} | {label} | {len(examples)} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.card:
        section = [SECTION, "", f"The same windows (cut by this bundle's converter, at most {args.files} files per "
                   "folder and split) scored by the bundle this one replaced (`-` where it does not take the "
                   "meter) and by this one, NLL per step and accuracy, by `bench/compare_rnn.py`:", "", *lines, ""]
        card = (args.new / "MODEL_CARD.md").read_text().split("\n" + SECTION)[0].rstrip("\n") + "\n\n"
        save_bundle(args.new, new.config, new.weights, card + "\n".join(section))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
