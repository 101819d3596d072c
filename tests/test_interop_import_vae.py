"""`magenta-bridge import` for Magenta's drums MusicVAE (cat-drums: 10-wide roll in, 512-way
one-hot out and fed back), stacked bidirectional encoders and hierarchical decoders (hierdec):
mu, sigma and teacher-forced logits equal the TF graph's, and the tools run on the bundle."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from bridge.bundle import load_bundle  # noqa: E402
from bridge.cli import main  # noqa: E402
from bridge.models.music_vae import MusicVAE, input_table  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from interop_tf_graphs import MusicVAEGraph  # noqa: E402
from interop_tf_vae_graphs import StackedEncoderVAEGraph  # noqa: E402

TOL = 1e-4


def _check(graph, model: MusicVAE, events: np.ndarray, classes: int, rng) -> None:
    target = np.eye(classes, dtype=np.float32)[events]
    previous = np.concatenate([np.zeros_like(target[:, :1]), target[:, :-1]], axis=1)
    z = rng.standard_normal((len(events), model.hp.z_size)).astype(np.float32)
    mu, sigma, logits = graph.reference(model.table[events], z, previous)
    ours_mu, ours_sigma = model.encode(events)
    assert np.abs(ours_mu - mu).max() <= TOL and np.abs(ours_sigma - sigma).max() <= TOL
    assert np.abs(model.decoder_logits(z, events) - logits).max() <= TOL


class _Store:
    def __init__(self, model):
        self.model = model

    def require(self, tool, kind, name=None, time_signature=None):
        return self.model


def test_cat_drums_checkpoint_matches_tf_and_serves_the_tools(tmp_path):
    graph = MusicVAEGraph(10, 512, 16, (12, 12), 8, 32, seed=9)
    graph.save(tmp_path / "ckpt" / "cat-drums_2bar_small.ckpt", v1=False)
    assert main(["import", str(tmp_path / "ckpt"), "-o", str(tmp_path / "drums")]) == 0
    bundle = load_bundle(tmp_path / "drums")
    assert bundle.config["kind"] == "drums" and bundle.config["hparams"]["dec_feedback"] == "one_hot"
    model = MusicVAE.from_bundle(bundle)
    np.testing.assert_array_equal(model.table, input_table("drums", 512))  # Magenta's roll + "nothing hit" bit
    rng = np.random.default_rng(10)
    _check(graph, model, rng.integers(0, 512, (3, 32)), 512, rng)
    ctx = ToolContext(_Store(model), lambda f, m: None)
    out = TOOLS["generate"]([], {"type": "drums", "variations": 2, "bars": 4, "seed": 1}, ctx)
    assert len(out) == 2 and all(c.length == 16.0 for c in out)
    steps = TOOLS["interpolate"](out, {"type": "drums", "steps": 3, "seed": 1}, ctx)
    assert len(steps) == 3


def test_stacked_encoder_melody_checkpoint_matches_tf(tmp_path):
    graph = StackedEncoderVAEGraph(90, 90, 12, 2, (16,), 6, 64, seed=11)
    graph.save(tmp_path / "ckpt" / "flat-mel_4bar.ckpt", v1=False)
    assert main(["import", str(tmp_path / "ckpt"), "-o", str(tmp_path / "mel")]) == 0
    bundle = load_bundle(tmp_path / "mel")
    assert bundle.config["hparams"]["enc_layers"] == 2 and bundle.config["hparams"]["bars"] == 4
    model = MusicVAE.from_bundle(bundle)
    rng = np.random.default_rng(12)
    _check(graph, model, rng.integers(0, 90, (3, 64)), 90, rng)


@pytest.mark.parametrize("config,classes,enc_in", [("hierdec-mel_4bar", 90, 90), ("hierdec-drums_4bar", 512, 10)])
def test_hierarchical_checkpoint_matches_tf_and_serves_the_tools(tmp_path, config, classes, enc_in):
    graph = StackedEncoderVAEGraph(enc_in, classes, 12, 2, (12, 10), 6, 64, seed=13, conductor=(16, 14), segments=4)
    graph.save(tmp_path / "ckpt" / f"{config}.ckpt", v1=False)
    assert main(["import", str(tmp_path / "ckpt"), "-o", str(tmp_path / "hier")]) == 0
    bundle = load_bundle(tmp_path / "hier")
    hparams = bundle.config["hparams"]
    assert (hparams["conductor_units"], hparams["segments"], hparams["bars"]) == ([16, 14], 4, 4)
    assert "hierarchical" in (tmp_path / "hier" / "MODEL_CARD.md").read_text()
    model = MusicVAE.from_bundle(bundle)
    rng = np.random.default_rng(14)
    _check(graph, model, rng.integers(0, classes, (3, 64)), classes, rng)
    kind = bundle.config["kind"]
    ctx = ToolContext(_Store(model), lambda f, m: None)
    out = TOOLS["generate"]([], {"type": kind, "variations": 2, "bars": 2, "seed": 3}, ctx)
    assert len(out) == 2 and all(c.length == 8.0 for c in out)  # a 4-bar window, trimmed to 2 bars
    assert len(TOOLS["interpolate"](out, {"type": kind, "steps": 4, "seed": 3}, ctx)) == 4
