"""Shared by the groove/drumify tests: random-weight GrooVAE models and synthetic drum clips."""
from __future__ import annotations

import numpy as np

from bridge.clip import Clip, Note
from bridge.encodings import groove as enc
from bridge.models.groovae import GrooVAE
from bridge.tools import ToolContext
from bridge.tools.common import DRUM_MAP


def random_weights(mode: str, enc_units: int = 16, dec_units: tuple[int, ...] = (16, 16), z: int = 8,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Weights in the bundle layout, random but large enough that outputs vary with the input."""
    rng = np.random.default_rng(seed)
    w = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)
    d = enc.MODES[mode]
    out = {}
    for name in ("enc_fw", "enc_bw"):
        out.update({f"{name}/kernel": w(d, 4 * enc_units), f"{name}/recurrent_kernel": w(enc_units, 4 * enc_units),
                    f"{name}/bias": w(4 * enc_units)})
    width = enc.FEATURES + z
    for i, units in enumerate(dec_units):
        out.update({f"dec_{i}/kernel": w(width, 4 * units), f"dec_{i}/recurrent_kernel": w(units, 4 * units),
                    f"dec_{i}/bias": w(4 * units)})
        width = units
    out.update({"mu/kernel": w(2 * enc_units, z), "mu/bias": w(z), "sigma/kernel": w(2 * enc_units, z),
                "sigma/bias": w(z), "dec_init/kernel": w(z, 2 * sum(dec_units)), "dec_init/bias": w(2 * sum(dec_units)),
                "out/kernel": w(dec_units[-1], enc.FEATURES), "out/bias": w(enc.FEATURES)})
    return out


def model(mode: str) -> GrooVAE:
    return GrooVAE(random_weights(mode), mode, f"random_{mode}")


def ctx() -> ToolContext:
    return ToolContext(models=None)


def drum_clip(bars: int, seed: int = 0, extra: tuple[Note, ...] = ()) -> Clip:
    """A quantized rock beat with random velocities: kick 1 and 3, snare 2 and 4, 8th hats."""
    rng = np.random.default_rng(seed)
    notes = list(extra)
    for bar in range(bars):
        for eighth in range(8):
            beat = bar * 4 + eighth / 2
            notes.append(Note(42, beat, 0.25, int(rng.integers(60, 110))))
            if eighth in (0, 4):
                notes.append(Note(36, beat, 0.25, int(rng.integers(80, 127))))
            if eighth in (2, 6):
                notes.append(Note(38, beat, 0.25, int(rng.integers(80, 127))))
    return Clip(tuple(notes), length=4.0 * bars, tempo=100.0, name="beat")


def params(**changes) -> dict:
    base = {"variations": 1, "temperature": 1.0, "amount": 1.0, "dynamics": 1.0, "ghost_notes": False, "seed": 7,
            "drum_map": DRUM_MAP.default, "bundle": None}
    return {**base, **changes}
