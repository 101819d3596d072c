"""Read the variables of a Magenta checkpoint: a `.mag` GeneratorBundle, a checkpoint folder,
or a checkpoint prefix (TF V1 single file or V2 .index + .data).

A `.mag` holds one TF V1 checkpoint file and a metagraph inside a protobuf (note-seq's
generator_pb2), plus the generator id that names its config (basic_rnn, drum_kit, ...). The
checkpoint is written to a temporary folder and read with `tf.train.load_checkpoint`, which
reads both V1 and V2 files. TensorFlow is imported only when a checkpoint is read: this is an
offline command, never part of serving.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Optimizer slots and step counters carry no model weights; every other variable must be
# placed by the importer, or the import is refused naming it.
_BOOKKEEPING = re.compile(r"(^|/)(global_step|beta[12]_power)$|/(Adam|Adam_1|Momentum|RMSProp|RMSProp_1)$")


class CheckpointError(ValueError):
    """A path that holds no readable checkpoint; the message says what was found instead."""


@dataclass(frozen=True)
class Checkpoint:
    variables: dict[str, np.ndarray]
    source: str                    # the .mag or checkpoint prefix read, for the model card
    generator_id: str | None = None
    description: str | None = None

    @property
    def hint(self) -> str:
        """The best name for the config this checkpoint was trained with: the generator id of a
        .mag, else the file or folder name (Magenta ships e.g. `cat-mel_2bar_big.ckpt`)."""
        if self.generator_id:
            return self.generator_id
        name = Path(self.source).name
        return re.sub(r"\.(ckpt|index)$", "", re.sub(r"\.ckpt-\d+.*$", "", name))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """All weight variables of the checkpoint at `path`, as float32 arrays."""
    path = Path(path)
    if path.suffix == ".mag":
        return _read_generator_bundle(path)
    prefix = _checkpoint_prefix(path)
    return Checkpoint(_load(prefix), str(prefix))


def _read_generator_bundle(path: Path) -> Checkpoint:
    from google.protobuf.message import DecodeError
    from note_seq.protobuf import generator_pb2

    bundle = generator_pb2.GeneratorBundle()
    try:
        bundle.ParseFromString(path.read_bytes())
    except DecodeError as exc:
        raise CheckpointError(f"{path}: not a GeneratorBundle (.mag) file: {exc}") from None
    files = list(bundle.checkpoint_file)
    if len(files) != 1:
        raise CheckpointError(f"{path}: a .mag holds exactly one TF V1 checkpoint file; this one holds {len(files)}")
    with tempfile.TemporaryDirectory(prefix="mag-") as tmp:
        ckpt = Path(tmp) / "model.ckpt"
        ckpt.write_bytes(files[0])
        variables = _load(ckpt)
    details = bundle.generator_details
    return Checkpoint(variables, str(path), details.id or None, details.description or None)


def _checkpoint_prefix(path: Path) -> Path:
    """The prefix to read for a folder (its only or latest checkpoint) or a given prefix/file."""
    if path.is_dir():
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        state = path / "checkpoint"
        if state.is_file():
            match = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(), re.M)
            if match:
                return path / match.group(1)
        found = ", ".join(p.name for p in indexes) or "no *.index file"
        raise CheckpointError(f"{path}: cannot tell which checkpoint to read ({found}); pass its prefix")
    if path.is_file() and path.suffix in (".index", ".meta"):
        return path.with_suffix("")
    if path.is_file() or Path(f"{path}.index").is_file():
        return path
    raise CheckpointError(f"{path}: no such checkpoint file, prefix or folder")


def _load(prefix: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception as exc:  # TF raises several error types for the same "unreadable file"
        raise CheckpointError(f"{prefix}: not a readable TensorFlow checkpoint: {str(exc).splitlines()[0]}") from None
    names = [n for n in reader.get_variable_to_shape_map() if not _BOOKKEEPING.search(n)]
    return {n: np.asarray(reader.get_tensor(n), np.float32) for n in sorted(names)}
