"""How a cache stores a split on disk, and reading it back in either layout.

  * single: `train.npz` and `eval.npz`, each the split's examples stacked (the layout every
    cache had before sharding, and still the default);
  * shards: `train-00000.npz`, `train-00001.npz`, ... where shard k holds the examples of the
    files numbered k * shard_files to (k + 1) * shard_files - 1 (in the pipeline's sorted file
    order), so a shard's content never depends on which machine or runner wrote it. The
    manifest lists each split's shards and their example counts (`"shards"`); a shard whose
    files gave nothing to a split is not written.
Concatenating a split's shards in order gives exactly the single layout's arrays. Everything is
`.npz` read with allow_pickle=False. `Split` reads either layout one part at a time, so a
trainer streams a sharded split instead of holding it whole.
"""
from __future__ import annotations

import io
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np

from bridge.bundle import atomic_write

Arrays = dict[str, np.ndarray]


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.npz"


def write_arrays(path: Path, examples: list[Arrays]) -> dict:
    """Stack examples (same keys, shapes, dtypes) into one .npz; return its manifest entry."""
    arrays = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, buffer.getvalue())
    return {"file": path.name, "examples": len(examples)}


def array_specs(example: Arrays) -> dict:
    """The manifest's `arrays`: each key's per-example shape and dtype."""
    return {k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)} for k, v in example.items()}


def _rows(path: Path) -> int:
    """How many examples an .npz holds, from its first array's header (no data read)."""
    with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as member:
        version = np.lib.format.read_magic(member)
        header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in header:  # format 3.0 (non-latin-1 field names): read the array itself
            return len(np.lib.format.read_array(member, allow_pickle=False))
        shape, _, _ = header[version](member)
    return shape[0]


def _read(path: Path) -> Arrays:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


class Split:
    """One split of a cache, in either layout, read part by part (a part is a shard, or the
    whole split in the single layout). `keep` parts stay loaded, newest first."""

    def __init__(self, cache: str | Path, split: str, manifest: dict, keep: int = 2) -> None:
        cache = Path(cache)
        shards = (manifest.get("shards") or {}).get(split)
        if shards is None:  # the single layout, or a split kept in one file beside the shards
            self.files = [cache / f"{split}.npz"]
            self.sizes = [_rows(self.files[0])]
        else:
            self.files = [cache / s["file"] for s in shards]
            self.sizes = [s["examples"] for s in shards]
        self.size = sum(self.sizes)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.keep, self._loaded = keep, OrderedDict()

    def part(self, index: int) -> Arrays:
        if index not in self._loaded:
            self._loaded[index] = _read(self.files[index])
            while len(self._loaded) > self.keep:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(index)
        return self._loaded[index]

    def parts(self) -> Iterator[Arrays]:
        for index in range(len(self.files)):
            yield self.part(index)

    def arrays(self) -> Arrays:
        """The whole split in memory (what the single layout's `train.npz` holds)."""
        parts = list(self.parts())
        return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def chunks(self, size: int, limit: int | None = None) -> Iterator[Arrays]:
        """Consecutive chunks of `size` examples over the whole split (the first `limit`), cut
        at the same places in either layout, so eval numbers do not depend on the layout."""
        total = min(self.size, limit) if limit else self.size
        carry: Arrays | None = None
        done = 0
        for part in self.parts():
            if done >= total:
                break
            n = min(len(next(iter(part.values()))), total - done)
            part = {k: v[:n] for k, v in part.items()}
            done += n
            if carry is not None:
                part = {k: np.concatenate([carry[k], part[k]]) for k in part}
            whole = len(next(iter(part.values()))) // size * size
            for start in range(0, whole, size):
                yield {k: v[start:start + size] for k, v in part.items()}
            carry = {k: v[whole:] for k, v in part.items()} if whole < len(next(iter(part.values()))) else None
        if carry is not None:
            yield carry
