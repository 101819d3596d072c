"""Training batches as a fixed function of (seed, step), read from a cache in either layout.

Each epoch is a stream of every train example: the split's parts (shards) are put in an order
fixed by (seed, epoch) and taken `shuffle_shards` at a time; each such group is shuffled as a
whole, and batch i is stream positions [i * batch_size, (i + 1) * batch_size), sorted within
each group it touches. At most two groups are held in memory, so a sharded cache streams. A
split of at most `shuffle_shards` parts is one group shuffled by (seed, epoch) alone, which
is exactly the batches of a one-file cache: the layout does not change what a run trains on.
Because a batch depends on nothing but (seed, step), a resumed run sees the data it would have
seen without the kill, and every worker of a distributed run computes the same global batch
and takes its own slice of it (`replica_slice`).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from bridge.data.cache_layout import Arrays, Split


class Batches:
    def __init__(self, split: Split, batch_size: int, seed: int, shuffle_shards: int = 16) -> None:
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.shuffle_shards = max(1, shuffle_shards)
        self.size = split.size
        if self.size < batch_size:
            raise ValueError(f"only {self.size} training examples, fewer than batch_size {batch_size}")
        self.per_epoch = self.size // batch_size
        self._groups: OrderedDict[tuple[int, int], Arrays] = OrderedDict()

    def _layout(self, epoch: int) -> list[tuple[list[int], np.ndarray]]:
        """Each group of the epoch: its parts (ascending) and the permutation of its examples."""
        count = len(self.split.sizes)
        if count <= self.shuffle_shards:
            return [(list(range(count)), np.random.default_rng([self.seed, epoch]).permutation(self.size))]
        order = np.random.default_rng([self.seed, epoch]).permutation(count)
        groups = [sorted(order[i:i + self.shuffle_shards].tolist()) for i in range(0, count, self.shuffle_shards)]
        return [(parts, np.random.default_rng([self.seed, epoch, g]).permutation(sum(self.split.sizes[p] for p in parts)))
                for g, parts in enumerate(groups)]

    def _group(self, epoch: int, index: int, parts: list[int]) -> Arrays:
        key = (epoch, index)
        if key not in self._groups:
            loaded = [self.split.part(p) for p in parts]
            self._groups[key] = loaded[0] if len(loaded) == 1 else {
                k: np.concatenate([part[k] for part in loaded]) for k in loaded[0]}
            while len(self._groups) > 2:
                self._groups.popitem(last=False)
        return self._groups[key]

    def __call__(self, step: int) -> Arrays:
        epoch, index = divmod(step, self.per_epoch)
        begin, end = index * self.batch_size, (index + 1) * self.batch_size
        pieces, offset = [], 0
        for g, (parts, order) in enumerate(self._layout(epoch)):
            lo, hi = max(begin, offset), min(end, offset + len(order))
            if lo < hi:
                pick = np.sort(order[lo - offset:hi - offset])
                pieces.append({k: v[pick] for k, v in self._group(epoch, g, parts).items()})
            offset += len(order)
        return pieces[0] if len(pieces) == 1 else {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}


def replica_slice(batch: Arrays, replica: int, replicas: int) -> Arrays:
    """Replica `replica`'s equal share of a global batch (batch_size divides by replicas)."""
    size = len(next(iter(batch.values()))) // replicas
    return {k: v[replica * size:(replica + 1) * size] for k, v in batch.items()}
