"""Meters: the grid per meter, which model takes which meter, and meter-aware tools that keep
the clip's own bars (random weights: what the tools promise, not how they sound)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bridge import meter as M
from bridge.bundle import Bundle
from bridge.clip import Clip, Note, TimeSignature
from bridge.model_store import Loaded, ModelStore
from bridge.models.music_vae import MusicVAE
from bridge.tools import TOOLS, ToolContext, ToolError
from test_music_vae import random_vae


def ts(text: str) -> TimeSignature:
    return M.parse(text)


@pytest.mark.parametrize("meter,spq,bar,beat", [
    ("4/4", 4, 16, 4), ("3/4", 4, 12, 4), ("2/4", 4, 8, 4), ("6/8", 4, 12, 6), ("3/8", 4, 6, 2),
    ("12/8", 4, 24, 6), ("2/2", 2, 8, 4), ("3/2", 2, 12, 4), ("6/4", 4, 24, 12), ("3/1", 1, 12, 4),
    ("7/8", 4, 14, 2), ("5/4", 4, 20, 4)])
def test_grid_of_each_meter(meter, spq, bar, beat):
    grid = M.MeterGrid.of(meter)
    assert (grid.steps_per_quarter, grid.bar_steps, grid.beat_steps) == (spq, bar, beat)
    assert grid.bar_steps == round(ts(meter).beats_per_bar * spq)  # a bar is whole steps


def test_features_mark_bars_and_beats_the_same_way_in_every_meter():
    for meter in ("4/4", "3/4", "6/8", "3/2"):
        grid = M.MeterGrid.of(meter)
        f = grid.features(np.arange(2 * grid.bar_steps))
        assert f.shape == (2 * grid.bar_steps, M.FEATURES)
        assert np.flatnonzero(f[:, 0]).tolist() == [0, grid.bar_steps]  # bar starts
        assert np.flatnonzero(f[:, 1]).tolist() == list(range(0, 2 * grid.bar_steps, grid.beat_steps))
        assert (f[:, 2:].sum(axis=1) == 4).all()  # one column each: beat, step in beat, beat length, beats a bar
    # 3/2 on its 8th grid reads exactly like 3/4 on 16ths.
    assert (M.MeterGrid.of("3/2").bar_features() == M.MeterGrid.of("3/4").bar_features()).all()
    assert not (M.MeterGrid.of("6/8").bar_features() == M.MeterGrid.of("3/4").bar_features()).all()


def test_meters_without_a_grid_are_refused():
    with pytest.raises(M.MeterError):
        M.MeterGrid.of("7/32")
    with pytest.raises(M.MeterError, match="not a meter"):
        M.parse("six-eight")


@pytest.mark.parametrize("trained,meter_aware,clip,ok", [
    (["4/4"], False, "4/4", True), (["4/4"], False, "2/2", True), (["4/4"], False, "3/4", False),
    (["4/4"], False, "12/8", False), (["3/4"], True, "3/2", True), (["2/4"], True, "2/2", True),
    (["3/4", "6/8"], True, "9/8", False), (["3/4"], True, "6/8", False), (["6/8"], True, "6/8", True)])
def test_which_meters_a_model_takes(trained, meter_aware, clip, ok):
    assert M.accepts(trained, ts(clip), meter_aware) is ok


def _loaded(name: str, meters: list[str] | None, meter_aware: bool, default: bool = False) -> Loaded:
    config = {"name": name, "kind": "melody", "tools": ["generate"], "model_class": "music_vae",
              "hparams": {"meter": meter_aware}, "default": default}
    if meters is not None:
        config["meters"] = meters
    return Loaded(Bundle(None, config, {}), name)


def test_store_picks_the_specialist_and_names_the_meters_it_has():
    store = ModelStore([_loaded("four", None, False), _loaded("folk", ["2/4", "3/4", "4/4", "6/8"], True)])
    assert store.require("generate", "melody", time_signature=ts("4/4")) == "four"  # fewest meters first
    assert store.require("generate", "melody", time_signature=ts("2/2")) == "four"
    assert store.require("generate", "melody", time_signature=ts("6/8")) == "folk"
    assert store.require("generate", "melody", time_signature=ts("3/2")) == "folk"
    with pytest.raises(ToolError, match="no installed generate model takes 7/8.*2/4, 3/4, 4/4, 6/8") as caught:
        store.require("generate", "melody", time_signature=ts("7/8"))
    assert caught.value.code == "bad_input"
    with pytest.raises(ToolError, match="takes 6/8"):
        store.require("generate", "melody", "four", time_signature=ts("6/8"))  # a named bundle too
    assert store.describe()[0]["meters"] == ["4/4"]


def meter_vae(seed: int = 0) -> MusicVAE:
    base = random_vae(bars=4, seed=seed, enc=12, dec=(12,), z=6)
    hp = replace(base.hp, meter=True, window=48)
    rng = np.random.default_rng(seed)
    weights = dict(base.w)
    kernel = weights["decoder/lstm_0/kernel"]
    weights["decoder/lstm_0/kernel"] = np.concatenate(
        [kernel, rng.normal(0, 0.3, (M.FEATURES, kernel.shape[1])).astype(np.float32)])
    return MusicVAE(weights, hp, "random_meter")


CTX = ToolContext(models=None)


@pytest.mark.parametrize("meter", ["3/4", "6/8", "3/2", "2/4"])
def test_meter_aware_generate_keeps_the_clips_bars(meter):
    model = meter_vae()
    context = Clip(length=ts(meter).beats_per_bar, time_signature=ts(meter))
    for bars in (1, 2, 4, 8):
        clips = model.generate([context], TOOLS["generate"].resolve({"bars": bars, "variations": 2, "seed": 1}), CTX)
        for clip in clips:
            assert clip.time_signature == ts(meter) and clip.length == bars * ts(meter).beats_per_bar
            assert all(0 <= n.start < clip.length and n.end <= clip.length + 1e-9 for n in clip.notes)
            grid = M.MeterGrid.of(meter)
            assert all(abs(n.start * grid.steps_per_quarter - round(n.start * grid.steps_per_quarter)) < 1e-9
                       for n in clip.notes)  # on the meter's grid (8ths for 3/2)


def test_meter_aware_interpolate_in_six_eight():
    model = meter_vae(1)
    jig = ts("6/8")
    a = Clip([Note(60 + i % 5, i * 0.5, 0.5) for i in range(24)], 12.0, time_signature=jig)
    b = Clip([Note(67 - i % 3, i * 1.5, 1.0) for i in range(8)], 12.0, time_signature=jig)
    clips = model.interpolate(a, b, TOOLS["interpolate"].resolve({"steps": 3, "seed": 0}), CTX)
    assert [c.length for c in clips] == [12.0] * 3 and all(c.time_signature == jig for c in clips)


def test_interpolate_refuses_two_meters():
    a = Clip([Note(60, 0, 1)], 4.0)
    b = Clip([Note(60, 0, 1)], 3.0, time_signature=ts("3/4"))
    with pytest.raises(ToolError, match="A is in 4/4 and B in 3/4"):
        TOOLS["interpolate"]([a, b], {}, CTX)
