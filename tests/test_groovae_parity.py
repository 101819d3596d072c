"""Keras/NumPy parity for GrooVAE: same weights give the same posterior and the same decoding."""
import numpy as np
import pytest

from bridge.encodings import groove as enc
from bridge.meter import MeterGrid
from bridge.models.configs import ModelConfig
from bridge.models.groovae import GrooVAE

keras = pytest.importorskip("keras")
families = pytest.importorskip("bridge.train.families.groovae")


def _config(mode: str, meter: bool, dec_inputs: bool = False) -> ModelConfig:
    return ModelConfig("tiny", "groovae", "drums", ("groove",), "groove",
                       hparams={"mode": mode, "enc_units": 12, "dec_units": [10, 8], "z_size": 6,
                                "free_bits": 1.0, "beta": 0.2, "dropout": 0.0, "meter": meter,
                                "window": 48 if meter else enc.WINDOW_STEPS, "dec_inputs": dec_inputs})


@pytest.mark.parametrize("mode,meter,dec_inputs", [("humanize", None, False), ("tap", None, False),
                                                   ("humanize", "6/8", False), ("tap", "3/4", False),
                                                   ("tap", "6/8", True)])
def test_encoder_and_decoder_match_keras(mode, meter, dec_inputs):
    """A 4/4-only model (2-bar windows) and meter-aware ones (48-step windows on the meter's
    grid, the decoder reading each step's bar position and, with dec_inputs, each step's tap)."""
    rng = np.random.default_rng(0)
    config = _config(mode, meter is not None, dec_inputs)
    window = config.hparams["window"]
    perf = np.zeros((3, window, enc.FEATURES), np.float32)
    hits = rng.random((3, window, 9)) < 0.3
    perf[..., :9] = hits
    perf[..., 9:18] = hits * rng.uniform(0.2, 1.0, hits.shape)
    perf[..., 18:] = hits * rng.uniform(-1.0, 1.0, hits.shape)
    grid = MeterGrid.of(meter or "4/4")
    batch = families.prepare_batch({"performance": perf, "grid": np.repeat(grid.encode()[None], 3, axis=0)}, config)
    model = families.build(config)
    model(batch)
    # Random non-trivial weights, so the check does not pass on near-zero activations.
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    serving = GrooVAE(families.export_weights(model, config), mode, window=window, meter=meter is not None,
                      dec_inputs=dec_inputs)

    mu_k, sigma_k = (np.asarray(t) for t in model.encode(batch["inputs"]))
    mu, sigma = serving.encode(batch["inputs"])
    assert np.abs(mu - mu_k).max() <= 1e-4 and np.abs(sigma - sigma_k).max() <= 1e-4

    # Decode with NumPy (hits near-deterministic at a tiny temperature), then teacher-force Keras
    # on that output: Keras must predict exactly what NumPy wrote at every step.
    out = serving.decode(mu, np.random.default_rng(1), temperature=1e-3, grid=grid, controls=batch["inputs"])
    logits = np.asarray(model.decode(mu, out, batch["positions"], controls=batch["inputs"]))
    decisive = np.abs(logits[..., :9]) > 1e-2
    assert ((logits[..., :9] > 0) == (out[..., :9] > 0.5))[decisive].all()
    played = out[..., :9]
    assert 10 < played.sum() < played.size - 10  # both hits and rests are checked
    assert np.abs(1 / (1 + np.exp(-logits[..., 9:18])) * played - out[..., 9:18]).max() <= 1e-4
    assert np.abs(np.tanh(logits[..., 18:]) * played - out[..., 18:]).max() <= 1e-4


@pytest.mark.parametrize("meter,dec_inputs", [(False, False), (True, False), (True, True)])
def test_training_images_decode_with_the_serving_model(meter, dec_inputs):
    """TensorBoard's sample images come from the NumPy model built from the config's hparams."""
    config = _config("tap", meter, dec_inputs)
    model = families.build(config)
    perf = np.zeros((1, config.hparams["window"], enc.FEATURES), np.float32)
    model(families.prepare_batch({"performance": perf, "grid": MeterGrid.of("4/4").encode()[None]}, config))
    rolls = families.sample_rolls(model, config, 2, seed=0)
    assert [r.shape for r in rolls] == [(config.hparams["window"], 9)] * 2
