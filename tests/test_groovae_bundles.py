"""The shipped GrooVAE bundles: they load, serve both tools, and beat the baselines on the
real eval windows each bundle ships (eval_slice.npz, written by `magenta-bridge export`)."""
from pathlib import Path

import numpy as np
import pytest

from bridge.clip import Clip, Note
from bridge.drums import GM_DRUM_MAP
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore
from bridge.tools import TOOLS, ToolContext
from bridge.train.eval_groove import drumify_rows, timing_errors, reconstruct

STORE = ModelStore.from_dir(DEFAULT_BUNDLES_DIR)
NAMES = ("groovae_humanize", "groovae_tap2drum")


def _slice(name: str) -> dict[str, np.ndarray]:
    with np.load(Path(DEFAULT_BUNDLES_DIR) / name / "eval_slice.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _model(name: str):
    return next(item.model for item in STORE.loaded if item.name == name)


def test_both_bundles_load():
    assert not {n: r for n, r in STORE.refused.items() if n in NAMES}
    assert {item.name for item in STORE.loaded} >= set(NAMES)


def test_tools_find_the_bundles_and_keep_the_clip_shape():
    beat = Clip(tuple(Note(p, i / 2, 0.25, 100) for i in range(20) for p in ((36, 42) if i % 4 == 0 else (42,))),
                length=10.0, tempo=97.0, name="b")
    ctx = ToolContext(STORE)
    grooved = TOOLS["groove"]([beat], {"seed": 1, "variations": 2}, ctx)
    drums = TOOLS["drumify"]([beat], {"seed": 1}, ctx)
    assert [c.name for c in grooved] == ["groove 1/2 b", "groove 2/2 b"] and drums[0].name == "drumify 1/1 b"
    for clip in grooved + drums:
        assert clip.length == 10.0 and all(0 <= n.start < 10.0 for n in clip.notes)
    assert all(GM_DRUM_MAP.classify(n.pitch) is not None for n in drums[0].notes) and drums[0].notes


def test_humanize_beats_grid_and_flat_velocity_on_shipped_eval_windows():
    data = _slice("groovae_humanize")
    perf, bpm = data["performance"], data["bpm"]
    flat = np.zeros_like(perf)
    flat[..., 9:18] = perf[..., 9:18][perf[..., :9] > 0.5].mean()  # even the slice's own mean velocity
    grid_ms, flat_vel = timing_errors(flat, perf, bpm)
    ms, vel = timing_errors(reconstruct(_model("groovae_humanize"), data, None, True), perf, bpm,
                            data["grid"][:, 0] if "grid" in data else 4)
    assert ms < grid_ms and vel < flat_vel


def test_tap2drum_beats_kick_and_hats_on_shipped_eval_windows():
    rows = dict(drumify_rows(_model("groovae_tap2drum"), _slice("groovae_tap2drum")))
    assert rows["model: z = mean, p > 0.5"][-1] > rows["baseline: kick on taps, hat on 8ths"][-1]
