"""Bundle files: a folder holding one trained model, readable without TensorFlow.

    config.json    model class, architecture, encoding, hparams, converter settings
    weights.npz    named float arrays (loaded with allow_pickle=False: never pickle)
    MODEL_CARD.md  data, split, training command, time, eval metrics, data license
    SHA256SUMS     checksums of the three files above, verified on every load

Loading refuses a bundle whose checksum, schema version or config keys are wrong, with a
message that says which, so a half-copied or hand-edited bundle never plays wrong notes.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
FILES = ("config.json", "weights.npz", "MODEL_CARD.md")
REQUIRED_KEYS = ("schema_version", "name", "model_class", "kind", "tools", "hparams")


class BundleError(Exception):
    """A bundle that cannot be loaded; the message names the bundle and the reason."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    config: dict
    weights: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.config["name"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file owner-only; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_bundle(directory: str | Path, config: dict, weights: dict[str, np.ndarray], card: str) -> Path:
    """Write a complete bundle; float64 weights are stored as float32."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"schema_version": SCHEMA_VERSION, **config}
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise BundleError(f"config is missing {', '.join(missing)}")
    arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in weights.items()}
    for key, value in arrays.items():
        if value.dtype == object:
            raise BundleError(f"weight {key} is an object array; bundles hold numbers only")
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(directory / "weights.npz", buffer.getvalue())
    atomic_write(directory / "config.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    atomic_write(directory / "MODEL_CARD.md", card.encode())
    sums = "".join(f"{_sha256(directory / f)}  {f}\n" for f in FILES)
    atomic_write(directory / "SHA256SUMS", sums.encode())
    return directory


def write_card_section(directory: str | Path, title: str, section: str) -> None:
    """Put a markdown section (starting with `title`, e.g. "## Evaluation ...") at the end of a
    bundle's MODEL_CARD.md, in place of an earlier one with that title, and re-sign the bundle:
    how an evaluation run after export records its numbers on the card."""
    bundle = load_bundle(directory)
    card = (bundle.path / "MODEL_CARD.md").read_text()
    card = card.split("\n" + title)[0].rstrip("\n") + "\n\n" + section
    save_bundle(bundle.path, bundle.config, bundle.weights, card)


def load_bundle(directory: str | Path) -> Bundle:
    """Verify and load a bundle, or raise BundleError saying exactly what is wrong."""
    directory = Path(directory)
    label = directory.name
    sums_path = directory / "SHA256SUMS"
    if not sums_path.is_file():
        raise BundleError(f"bundle {label}: no SHA256SUMS file; re-export it with `magenta-bridge export`")
    expected = {}
    for line in sums_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            expected[parts[1]] = parts[0]
    for name in FILES:
        path = directory / name
        if not path.is_file():
            raise BundleError(f"bundle {label}: {name} is missing")
        if expected.get(name) != _sha256(path):
            raise BundleError(f"bundle {label}: checksum mismatch for {name} (file changed or corrupted)")
    try:
        config = json.loads((directory / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"bundle {label}: config.json is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise BundleError(f"bundle {label}: config.json must hold an object")
    if config.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"bundle {label}: schema_version {config.get('schema_version')!r}, this bridge reads {SCHEMA_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise BundleError(f"bundle {label}: config.json lacks {', '.join(missing)}")
    try:
        with np.load(directory / "weights.npz", allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
    except Exception as exc:  # a truncated zip raises several kinds; all mean the same to the user
        raise BundleError(f"bundle {label}: weights.npz cannot be read: {exc}") from None
    return Bundle(directory, config, weights)
