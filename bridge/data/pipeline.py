"""MIDI folder -> cached, split training examples, with Magenta-style statistics.

Every `.mid`/`.midi` under the folder is read (notes in beats from ticks), cut into examples
by the config's converter and put in the train or eval split:
  * a folder with an `info.csv` holding `midi_filename` and `split` columns (the Groove MIDI
    Dataset) uses it: train -> train, validation -> eval, test is held out and never read;
  * otherwise a file goes to eval when the hash of its path (relative to the folder) falls in
    the first `eval_ratio` of the hash range, so the split never changes between runs or
    machines and a song is never in both splits.
The cache is `train.npz` + `eval.npz` (stacked arrays, loaded with allow_pickle=False) and
`manifest.json`; it is rebuilt only when the converter, its args or the source folder change.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bridge.bundle import atomic_write
from bridge.clip import ClipError
from bridge.data import converters
from bridge.midi_io import read_midi_tracks
from bridge.models.configs import ModelConfig

PIPELINE_VERSION = 1
EVAL_RATIO = 0.1
SPLITS = ("train", "eval")
_INFO_SPLITS = {"train": "train", "validation": "eval", "test": None}


def midi_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.is_file())


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def listed_splits(root: Path) -> dict[str, str | None] | None:
    """path -> split from an info.csv with midi_filename and split columns, else None."""
    info = root / "info.csv"
    if not info.is_file():
        return None
    with open(info, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"midi_filename", "split"} <= set(rows[0]):
        return None
    return {row["midi_filename"]: _INFO_SPLITS.get(row["split"], None) for row in rows}


def split_of(rel: str, listed: dict[str, str | None] | None, eval_ratio: float = EVAL_RATIO) -> str | None:
    if listed is not None and rel in listed:
        return listed[rel]
    return "eval" if _hash(rel) < eval_ratio * 2**64 else "train"


def cache_key(config: ModelConfig, source: Path) -> str:
    spec = json.dumps([PIPELINE_VERSION, config.converter, config.converter_args, str(source.resolve())], sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


class Progress:
    """A one-line progress bar on stderr (silent when `enabled` is False)."""

    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label, self.enabled, self.start = total, label, enabled, time.monotonic()
        self.shown = -1

    def update(self, done: int) -> None:
        percent = 100 * done // max(self.total, 1)
        if self.enabled and percent != self.shown:
            self.shown = percent
            filled = int(30 * done / max(self.total, 1))
            print(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} "
                  f"{time.monotonic() - self.start:.0f}s", end="" if done < self.total else "\n",
                  file=sys.stderr, flush=True)


def build(config: ModelConfig, source: str | Path, cache_root: str | Path = "cache", quiet: bool = False) -> Path:
    """Build (or reuse) the cache for a config and a MIDI folder; return the cache folder."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"data folder {source} does not exist")
    cache = Path(cache_root) / f"{config.converter}-{cache_key(config, source)}"
    if (cache / "manifest.json").is_file():
        return cache
    converter = converters.get(config.converter, **config.converter_args)
    listed = listed_splits(source)
    files = midi_files(source)
    if not files:
        raise FileNotFoundError(f"no .mid or .midi files under {source}")
    examples: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in SPLITS}
    counts = {s: Counter() for s in SPLITS}
    skipped: Counter = Counter()
    eval_files = []
    progress = Progress(len(files), "reading MIDI", not quiet)
    for i, path in enumerate(files, 1):
        rel = path.relative_to(source).as_posix()
        split = split_of(rel, listed)
        if split is None:
            skipped["held out (test split)"] += 1
        else:
            try:
                score = read_midi_tracks(path)
            except (ClipError, OSError) as exc:
                skipped[f"unreadable: {type(exc).__name__}"] += 1
                score = None
            if score is not None:
                found = converter.examples(score, {"path": rel, "split": split, "seed": _hash(rel)})
                examples[split] += found
                counts[split]["files"] += 1
                counts[split]["examples"] += len(found)
                if split == "eval":
                    eval_files.append(rel)
        progress.update(i)
    cache.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for split in SPLITS:
        if not examples[split]:
            raise ValueError(f"no {split} examples from {source}: {dict(converter.stats) or 'no usable files'}")
        arrays = {k: np.stack([e[k] for e in examples[split]]) for k in examples[split][0]}
        shapes = {k: {"shape": list(v.shape[1:]), "dtype": str(v.dtype)} for k, v in arrays.items()}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(cache / f"{split}.npz", buffer.getvalue())
    manifest = {
        "version": PIPELINE_VERSION, "converter": config.converter, "converter_args": config.converter_args,
        "source": str(source.resolve()), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "files": {"found": len(files), "skipped": dict(skipped)},
        "splits": {s: dict(counts[s]) for s in SPLITS}, "arrays": shapes,
        "split_rule": "info.csv split column" if listed is not None else f"path hash, eval ratio {EVAL_RATIO}",
        "stats": dict(sorted(converter.stats.items())), "eval_files": eval_files,
    }
    atomic_write(cache / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return cache


def load(cache: str | Path, split: str) -> dict[str, np.ndarray]:
    with np.load(Path(cache) / f"{split}.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def manifest(cache: str | Path) -> dict:
    return json.loads((Path(cache) / "manifest.json").read_text())


def summary(m: dict) -> str:
    """The pipeline statistics as a plain table, like Magenta's pipeline summary."""
    rows = [("MIDI files found", m["files"]["found"])]
    rows += [(f"skipped: {reason}", n) for reason, n in sorted(m["files"]["skipped"].items())]
    for split in SPLITS:
        rows += [(f"{split} files", m["splits"][split].get("files", 0)),
                 (f"{split} examples", m["splits"][split].get("examples", 0))]
    rows += [(key, n) for key, n in m["stats"].items()]
    width = max(len(r[0]) for r in rows)
    lines = [f"pipeline statistics ({m['converter']}, split by {m['split_rule']})"]
    lines += [f"  {name:<{width}}  {value:>8}" for name, value in rows]
    return "\n".join(lines)
