"""MIDI folder -> cached, split training examples, with Magenta-style statistics.

Every `.mid`/`.midi` under each data folder is read (notes in beats from ticks), cut into
examples by the config's converter and put in the train or eval (validation) split, or held
out as test:
  * a folder with an `info.csv` holding `midi_filename` and `split` columns (the Groove MIDI
    Dataset) uses it: train -> train, validation -> eval, test -> test;
  * otherwise a file's split comes from the hash of its path (relative to its folder): the
    first EVAL_RATIO of the hash range is eval, the next TEST_RATIO is test, the rest train.
    The split never changes between runs or machines, a song is never in two splits, and a
    folder keeps its split when it is trained together with other folders.
Eval chooses checkpoints; test files are never read by `build` or training, only by the
evaluations that report on them (`test_files`), so their numbers are honest.
The cache is `train.npz` + `eval.npz` (stacked arrays, loaded with allow_pickle=False) and
`manifest.json`; it is rebuilt only when the converter, its args or the source folders change.
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
from typing import Sequence

import numpy as np

from bridge.bundle import atomic_write
from bridge.clip import ClipError
from bridge.data import converters
from bridge.midi_io import read_midi_tracks
from bridge.models.configs import ModelConfig

PIPELINE_VERSION = 2
EVAL_RATIO = 0.1
TEST_RATIO = 0.1
SPLITS = ("train", "eval")
_INFO_SPLITS = {"train": "train", "validation": "eval", "test": "test"}


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


def split_of(rel: str, listed: dict[str, str | None] | None) -> str | None:
    """"train", "eval" or "test" for a file (its path relative to its data folder); None for a
    file an info.csv lists with a split we do not know."""
    if listed is not None and rel in listed:
        return listed[rel]
    position = _hash(rel) / 2**64
    return "eval" if position < EVAL_RATIO else "test" if position < EVAL_RATIO + TEST_RATIO else "train"


def sources_of(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """One data folder or several, as a list of Paths."""
    return [Path(s) for s in ([source] if isinstance(source, (str, Path)) else source)]


def labelled_files(sources: Sequence[Path]) -> list[tuple[Path, str, str | None]]:
    """(path, label, split) of every MIDI file: the label is the path relative to its folder,
    prefixed with the folder's name when there are several folders."""
    out = []
    for root in sources:
        listed = listed_splits(root)
        for path in midi_files(root):
            rel = path.relative_to(root).as_posix()
            out.append((path, f"{root.name}/{rel}" if len(sources) > 1 else rel, split_of(rel, listed)))
    return out


def test_files(source: str | Path | Sequence[str | Path]) -> list[tuple[Path, str]]:
    """The held-out test files of one or several data folders, as (path, label)."""
    return [(path, label) for path, label, split in labelled_files(sources_of(source)) if split == "test"]


def cache_key(config: ModelConfig, sources: Sequence[Path]) -> str:
    folders = [str(s.resolve()) for s in sources]
    spec = json.dumps([PIPELINE_VERSION, config.converter, config.converter_args,
                       folders[0] if len(folders) == 1 else folders], sort_keys=True)
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


def build(config: ModelConfig, source: str | Path | Sequence[str | Path], cache_root: str | Path = "cache",
          quiet: bool = False) -> Path:
    """Build (or reuse) the cache for a config and one or more MIDI folders; return the cache folder."""
    sources = sources_of(source)
    for folder in sources:
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder {folder} does not exist")
    cache = Path(cache_root) / f"{config.converter}-{cache_key(config, sources)}"
    if (cache / "manifest.json").is_file():
        return cache
    converter = converters.get(config.converter, **config.converter_args)
    files = labelled_files(sources)
    if not files:
        raise FileNotFoundError(f"no .mid or .midi files under {', '.join(map(str, sources))}")
    examples: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in SPLITS}
    counts = {s: Counter() for s in SPLITS}
    skipped: Counter = Counter()
    eval_files = []
    progress = Progress(len(files), "reading MIDI", not quiet)
    for i, (path, rel, split) in enumerate(files, 1):
        if split not in SPLITS:
            skipped["held out (test split)" if split == "test" else "split not known"] += 1
        else:
            try:
                score = read_midi_tracks(path)
            except (ClipError, OSError) as exc:
                skipped[f"unreadable: {type(exc).__name__}"] += 1
                score = None
            if score is not None:
                found = converter.examples(score, {"path": rel, "file": str(path), "split": split, "seed": _hash(rel)})
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
            raise ValueError(f"no {split} examples from {', '.join(map(str, sources))}: {dict(converter.stats) or 'no usable files'}")
        arrays = {k: np.stack([e[k] for e in examples[split]]) for k in examples[split][0]}
        shapes = {k: {"shape": list(v.shape[1:]), "dtype": str(v.dtype)} for k, v in arrays.items()}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(cache / f"{split}.npz", buffer.getvalue())
    manifest = {
        "version": PIPELINE_VERSION, "converter": config.converter, "converter_args": config.converter_args,
        "source": str(sources[0].resolve()) if len(sources) == 1 else [str(s.resolve()) for s in sources],
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "files": {"found": len(files), "skipped": dict(skipped)},
        "splits": {s: dict(counts[s]) for s in SPLITS}, "arrays": shapes,
        "split_rule": " + ".join(_split_rule(s) for s in sources),
        "stats": dict(sorted(converter.stats.items())), "eval_files": eval_files,
    }
    atomic_write(cache / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return cache


def test_split(config: ModelConfig, cache: str | Path) -> dict[str, np.ndarray]:
    """The held-out test examples of a built cache's folders, converted as training converts
    (test.npz beside train.npz and eval.npz, made on first use): what cards report beside the
    validation numbers, read only after a model is chosen. Empty when the folders have no
    test files (a small folder of one's own songs may have none)."""
    cache = Path(cache)
    if not (cache / "test.npz").is_file():
        m = manifest(cache)
        converter = converters.get(config.converter, **config.converter_args)
        found: list[dict[str, np.ndarray]] = []
        for path, rel in test_files(m["source"]):
            try:
                score = read_midi_tracks(path)
            except (ClipError, OSError):
                continue
            found += converter.examples(score, {"path": rel, "file": str(path), "split": "test", "seed": _hash(rel)})
        if not found:
            return {}
        buffer = io.BytesIO()
        np.savez(buffer, **{k: np.stack([e[k] for e in found]) for k in found[0]})
        atomic_write(cache / "test.npz", buffer.getvalue())
    return load(cache, "test")


def _split_rule(source: Path) -> str:
    if listed_splits(source) is not None:
        return f"{source.name}: info.csv split column"
    return f"{source.name}: path hash, eval {EVAL_RATIO:g}, test {TEST_RATIO:g}"


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
