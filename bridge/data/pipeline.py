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
The cache is `manifest.json` beside `train.npz` + `eval.npz` (stacked arrays, loaded with
allow_pickle=False) or, with `shard_files`, npz shards a trainer streams (bridge.data.cache_layout);
it is rebuilt only when the converter, its args or the source folders change. Each file is
converted on its own (`convert_file`) and the manifest is made from per-file summaries
(`manifest_of`), so `bridge.data.beam_pipeline` runs the same steps on Apache Beam and writes
the same cache.
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from bridge.bundle import atomic_write
from bridge.clip import ClipError
from bridge.data import cache_layout, converters
from bridge.midi_io import read_midi_tracks
from bridge.models.configs import ModelConfig

PIPELINE_VERSION = 2
EVAL_RATIO = 0.1
TEST_RATIO = 0.1
SPLITS = ("train", "eval")
_INFO_SPLITS = {"train": "train", "validation": "eval", "test": "test"}
SHOW_UNREADABLE = 20  # unreadable files the summary names; manifest.json keeps every one


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


@dataclass
class FileResult:
    """What one file gave: its split, its examples or why it gave none, and the converter's
    statistics for this file alone (summed over the files they make the statistics table)."""
    index: int
    label: str
    split: str | None
    skipped: str | None
    examples: list[dict[str, np.ndarray]]
    stats: Counter
    count: int = 0
    reason: str = ""  # why an unreadable file was skipped: the manifest lists it

    def summary(self) -> "FileResult":
        """The same without its examples (`count` keeps how many): what the manifest needs."""
        return replace(self, examples=[])


def convert_file(converter, index: int, path: Path, label: str, split: str | None,
                 wanted: Sequence[str] = SPLITS) -> FileResult:
    """Read and convert one file (number `index` in `labelled_files` order) if its split is
    `wanted` (training builds train and eval; only a card's evaluation asks for test). The
    converter's stats are reset first, so the result carries this file's counts only."""
    converter.stats = Counter()
    if split not in wanted:
        return FileResult(index, label, split, "held out (test split)" if split == "test" else "split not known", [],
                          Counter())
    try:
        score = read_midi_tracks(path)
    except (ClipError, OSError) as exc:  # a broken or absurd file is skipped and listed, never fatal
        return FileResult(index, label, split, "unreadable", [], Counter(), reason=str(exc).removeprefix(f"{path}: "))
    found = converter.examples(score, {"path": label, "file": str(path), "split": split, "seed": _hash(label)})
    return FileResult(index, label, split, None, found, converter.stats, len(found))


def cache_folder(config: ModelConfig, sources: Sequence[Path], cache_root: str | Path) -> Path:
    """The cache folder of a config and its data folders (which must exist)."""
    for folder in sources:
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder {folder} does not exist")
    return Path(cache_root) / f"{config.converter}-{cache_key(config, sources)}"


def listed_files(sources: Sequence[Path]) -> list[tuple[Path, str, str | None]]:
    """`labelled_files`, refusing folders that hold no MIDI file."""
    files = labelled_files(sources)
    if not files:
        raise FileNotFoundError(f"no .mid or .midi files under {', '.join(map(str, sources))}")
    return files


def part_of(result: FileResult, shard_files: int) -> int:
    """The shard a file's examples go to (0, the only part, in the single layout)."""
    return result.index // shard_files if shard_files else 0


def part_name(split: str, part: int, shard_files: int) -> str:
    return cache_layout.shard_name(split, part) if shard_files else f"{split}.npz"


def manifest_of(config: ModelConfig, sources: Sequence[Path], found: int, summaries: Sequence[FileResult],
                specs: dict, shards: dict[str, list[dict]] | None = None, shard_files: int = 0) -> dict:
    """The manifest from every file's summary (in file order) and what was written; raises
    when a split got no examples."""
    skipped: Counter = Counter()
    counts = {s: Counter() for s in SPLITS}
    stats: Counter = Counter()
    eval_files = []
    unreadable: dict[str, str] = {}  # file -> why it was skipped
    for result in summaries:
        if result.skipped:
            skipped[result.skipped] += 1
            if result.reason:
                unreadable[result.label] = result.reason
            continue
        counts[result.split]["files"] += 1
        counts[result.split]["examples"] += result.count
        stats.update(result.stats)  # update, not +: keeps reasons counted zero times, as the converter does
        if result.split == "eval":
            eval_files.append(result.label)
    for split in SPLITS:
        if not counts[split]["examples"]:
            raise ValueError(f"no {split} examples from {', '.join(map(str, sources))}: "
                             f"{dict(stats) or 'no usable files'}")
    manifest = {
        "version": PIPELINE_VERSION, "converter": config.converter, "converter_args": config.converter_args,
        "source": str(sources[0].resolve()) if len(sources) == 1 else [str(s.resolve()) for s in sources],
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "files": {"found": found, "skipped": dict(skipped)},
        "splits": {s: dict(counts[s]) for s in SPLITS}, "arrays": specs,
        "split_rule": " + ".join(_split_rule(s) for s in sources),
        "stats": dict(sorted(stats.items())), "eval_files": eval_files, "unreadable": unreadable,
    }
    if shard_files:
        manifest.update(shard_files=shard_files, shards=shards)
    return manifest


def write_manifest(cache: Path, manifest: dict) -> None:
    """Written last: a cache folder without a manifest is unfinished and is built again."""
    atomic_write(cache / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())


def build(config: ModelConfig, source: str | Path | Sequence[str | Path], cache_root: str | Path = "cache",
          quiet: bool = False, shard_files: int = 0) -> Path:
    """Build (or reuse) the cache for a config and one or more MIDI folders; return the cache
    folder. `shard_files` > 0 writes npz shards of that many files' examples, each as soon as
    its files are read, instead of one file per split."""
    sources = sources_of(source)
    cache = cache_folder(config, sources, cache_root)
    if (cache / "manifest.json").is_file():
        return cache
    converter = converters.get(config.converter, **config.converter_args)
    files = listed_files(sources)
    cache.mkdir(parents=True, exist_ok=True)
    pending: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in SPLITS}
    shards: dict[str, list[dict]] = {s: [] for s in SPLITS}
    summaries, specs = [], {}
    progress = Progress(len(files), "reading MIDI", not quiet)
    for index, (path, label, split) in enumerate(files):
        result = convert_file(converter, index, path, label, split)
        summaries.append(result.summary())
        if result.examples:
            pending[split] += result.examples
        if shard_files and ((index + 1) % shard_files == 0 or index + 1 == len(files)):
            for name in SPLITS:
                if pending[name]:
                    specs = cache_layout.array_specs(pending[name][0])
                    shards[name].append(cache_layout.write_arrays(
                        cache / part_name(name, part_of(result, shard_files), shard_files), pending[name]))
                    pending[name] = []
        progress.update(index + 1)
    if not shard_files:
        specs = next((cache_layout.array_specs(pending[s][0]) for s in reversed(SPLITS) if pending[s]), {})
    manifest = manifest_of(config, sources, len(files), summaries, specs, shards, shard_files)
    if not shard_files:
        for name in SPLITS:
            cache_layout.write_arrays(cache / part_name(name, 0, 0), pending[name])
    write_manifest(cache, manifest)
    return cache


def test_split(config: ModelConfig, cache: str | Path) -> dict[str, np.ndarray]:
    """The held-out test examples of a built cache's folders, converted as training converts
    (test.npz beside the cache's other splits, made on first use): what cards report beside the
    validation numbers, read only after a model is chosen. Empty when the folders have no
    test files (a small folder of one's own songs may have none)."""
    cache = Path(cache)
    if not (cache / "test.npz").is_file():
        converter = converters.get(config.converter, **config.converter_args)
        found = [example for i, (path, label) in enumerate(test_files(manifest(cache)["source"]))
                 for example in convert_file(converter, i, path, label, "test", ("test",)).examples]
        if not found:
            return {}
        cache_layout.write_arrays(cache / "test.npz", found)
    return load(cache, "test")


def _split_rule(source: Path) -> str:
    if listed_splits(source) is not None:
        return f"{source.name}: info.csv split column"
    return f"{source.name}: path hash, eval {EVAL_RATIO:g}, test {TEST_RATIO:g}"


def open_split(cache: str | Path, split: str) -> cache_layout.Split:
    """A split of a cache in either layout, read part by part (see bridge.data.cache_layout)."""
    return cache_layout.Split(cache, split, manifest(cache))


def load(cache: str | Path, split: str) -> dict[str, np.ndarray]:
    """A whole split in memory, whichever layout the cache has."""
    return open_split(cache, split).arrays()


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
    unreadable = m.get("unreadable", {})
    if unreadable:
        lines.append(f"unreadable files, skipped ({len(unreadable)}):")
        lines += [f"  {name}: {reason}" for name, reason in list(unreadable.items())[:SHOW_UNREADABLE]]
        if len(unreadable) > SHOW_UNREADABLE:
            lines.append(f"  ... and {len(unreadable) - SHOW_UNREADABLE} more (manifest.json lists them all)")
    return "\n".join(lines)
