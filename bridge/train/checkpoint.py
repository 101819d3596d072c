"""Checkpoints as plain `.npz` (no pickle): model variables, optimizer variables, and a JSON
string of trainer state (step, best eval loss, wall time). Written via temp file + rename, so
a run killed at any moment leaves only complete checkpoints behind.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np

from bridge.bundle import atomic_write

KEEP = 2
_NAME = re.compile(r"ckpt-(\d+)\.npz$")


def save(path: Path, model_vars: list, optimizer_vars: list, meta: dict) -> None:
    arrays = {f"model/{i:04d}": np.asarray(v) for i, v in enumerate(model_vars)}
    arrays.update({f"optimizer/{i:04d}": np.asarray(v) for i, v in enumerate(optimizer_vars)})
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue())


def load(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as npz:
        model = [npz[k] for k in sorted(k for k in npz.files if k.startswith("model/"))]
        optimizer = [npz[k] for k in sorted(k for k in npz.files if k.startswith("optimizer/"))]
        meta = json.loads(str(npz["meta"]))
    return model, optimizer, meta


def latest(directory: Path) -> Path | None:
    found = sorted((int(m.group(1)), p) for p in directory.glob("ckpt-*.npz") if (m := _NAME.search(p.name)))
    return found[-1][1] if found else None


def prune(directory: Path) -> None:
    """Keep the newest KEEP step checkpoints (best.npz is separate and always kept)."""
    found = sorted((int(m.group(1)), p) for p in directory.glob("ckpt-*.npz") if (m := _NAME.search(p.name)))
    for _, path in found[:-KEEP]:
        path.unlink(missing_ok=True)


def fingerprint(arrays: list[np.ndarray]) -> str:
    """A short hash of variable values, printed on resume so a restore can be checked."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:16]
