"""Training batches from a cache in either layout: a fixed function of (seed, step)."""
import numpy as np
from synthetic_midi import melody_folder

from bridge.data import pipeline
from bridge.models.configs import CONFIGS
from bridge.train.batches import Batches, replica_slice


def _caches(tmp_path):
    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    single = pipeline.build(CONFIGS["melody_rnn"], data, tmp_path / "single", quiet=True)
    sharded = pipeline.build(CONFIGS["melody_rnn"], data, tmp_path / "sharded", quiet=True, shard_files=2)
    return single, sharded


def test_few_shards_give_the_one_file_batches(tmp_path):
    """A sharded split of at most shuffle_shards shards trains on exactly the batches of the
    one-file cache, so the layout does not change a run (and old runs resume unchanged)."""
    single, sharded = _caches(tmp_path)
    parts = len(pipeline.manifest(sharded)["shards"]["train"])
    assert parts > 4
    one = Batches(pipeline.open_split(single, "train"), 8, seed=3)
    many = Batches(pipeline.open_split(sharded, "train"), 8, seed=3, shuffle_shards=parts)
    for step in (0, 1, 5, one.per_epoch, 3 * one.per_epoch + 2):
        a, b = one(step), many(step)
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_many_shards_stream_two_groups_at_a_time(tmp_path):
    _, sharded = _caches(tmp_path)
    split = pipeline.open_split(sharded, "train")
    batches = Batches(split, 8, seed=3, shuffle_shards=2)
    epoch = [batches(step) for step in range(batches.per_epoch)]
    # Every example at most once an epoch (the tail that fills no batch waits for the next).
    rows = np.concatenate([b["events"] for b in epoch])
    assert len(rows) == batches.per_epoch * 8 > split.size - 8
    seen, whole = _counts(rows), _counts(pipeline.load(sharded, "train")["events"])
    assert all(n <= whole[row] for row, n in seen.items())
    # Memory: the groups held at any time are at most two, of at most two shards each.
    assert len(batches._groups) <= 2 and all(len(g["events"]) <= 2 * max(split.sizes) for g in batches._groups.values())
    # A fresh reader (a resumed run) gives the same batch for the same step, in any order.
    again = Batches(pipeline.open_split(sharded, "train"), 8, seed=3, shuffle_shards=2)
    for step in (batches.per_epoch + 3, 7, 0):
        assert np.array_equal(again(step)["events"], batches(step)["events"])
    assert not np.array_equal(batches(batches.per_epoch)["events"], batches(0)["events"])  # epochs reshuffle


def _counts(events: np.ndarray) -> dict[bytes, int]:
    out: dict[bytes, int] = {}
    for row in map(bytes, events):
        out[row] = out.get(row, 0) + 1
    return out


def test_replicas_split_the_global_batch():
    batch = {"x": np.arange(12).reshape(6, 2)}
    parts = [replica_slice(batch, r, 3)["x"] for r in range(3)]
    assert np.array_equal(np.concatenate(parts), batch["x"]) and all(len(p) == 2 for p in parts)
