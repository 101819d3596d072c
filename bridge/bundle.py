"""Bundle files: a folder holding one trained model, readable without TensorFlow.

    config.json    model class, architecture, encoding, hparams, converter settings
    weights.npz    named float arrays (loaded with allow_pickle=False: never pickle)
    MODEL_CARD.md  data, split, training command, time, eval metrics, data license
    SHA256SUMS     checksums of the three files above, verified on every load

Loading refuses a bundle whose checksum, schema version or config is wrong (`check_config`:
each key's type, and the hparams that size the network within sane ranges), with a short
message that says which, so a half-copied or hand-edited bundle never plays wrong notes and
never stops the other bundles from serving.
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
MAX_TEXT = 200  # name, kind, model_class, tool and meter names
# Hyperparameters that size a network's loops and arrays, and the range a bundle may give each
# (ints; a list holds one per layer). Others (training settings) are not read when serving.
SIZES = {"layers": (1, 64), "enc_layers": (1, 16), "lookback": (0, 4096), "counter_bits": (0, 64),
         "window": (1, 65536), "bars": (1, 1024), "steps_per_bar": (1, 1024), "segments": (0, 4096),
         "z_size": (1, 65536), "enc_units": (1, 65536), "dec_units": (1, 65536), "conductor_units": (1, 65536),
         "min_pitch": (0, 127), "max_pitch": (0, 127)}


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
    problem = check_config(config)
    if problem:
        raise BundleError(f"bundle {label}: config.json {problem}")
    try:
        with np.load(directory / "weights.npz", allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
    except Exception as exc:  # a truncated zip raises several kinds; all mean the same to the user
        raise BundleError(f"bundle {label}: weights.npz cannot be read: {exc}") from None
    return Bundle(directory, config, weights)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT


def check_config(config: dict) -> str | None:
    """What is wrong with a config's keys (None when nothing): types, and SIZES' ranges."""
    from bridge import meter  # bridge.meter needs bridge.clip; keep exporting light

    for key in ("name", "model_class", "kind"):
        if not _is_text(config[key]):
            return f"{key} must be text of 1-{MAX_TEXT} characters, got {_short(config[key])}"
    tools = config["tools"]
    if not isinstance(tools, list) or not all(_is_text(t) for t in tools):
        return f"tools must be a list of tool names, got {_short(tools)}"
    for key in ("hparams", "converter_args"):
        if not isinstance(config.get(key, {}), dict):
            return f"{key} must be an object, got {_short(config[key])}"
    if "default" in config and not isinstance(config["default"], bool):
        return f"default must be true or false, got {_short(config['default'])}"
    if "converter" in config and not _is_text(config["converter"]):
        return f"converter must be a name, got {_short(config['converter'])}"
    meters = config.get("meters")
    if meters is not None:
        if not isinstance(meters, list) or not all(isinstance(m, str) for m in meters):
            return f"meters must be a list like [\"4/4\", \"3/4\"], got {_short(meters)}"
        for text in meters:
            try:
                meter.MeterGrid.of(meter.parse(text))
            except ValueError as exc:
                return f"meters: {exc}"
    for key, (low, high) in SIZES.items():
        if key not in config["hparams"]:
            continue
        value = config["hparams"][key]
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in values):
            return f"hparams.{key} must be {'integers' if isinstance(value, list) else 'an integer'} " \
                   f"{low}-{high}, got {_short(value)}"
    return None
