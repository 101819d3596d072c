"""The serving engine's blocked products change timing, not results."""
from pathlib import Path

import numpy as np
import pytest

from bridge.bundle import load_bundle
from bridge.engine import layers
from bridge.engine.layers import Product
from bridge.models.music_vae import MusicVAE

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"


@pytest.mark.parametrize("shape", [(10, 7), (256, 1536), (512, 2178), (1024, 4096)])
def test_blocked_product_equals_one_product(shape):
    """Every row count from one row to past the blocked path's limit, odd widths included."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(shape).astype(np.float32)
    product = Product(w)
    assert product.matrix.shape == shape and np.array_equal(product.matrix, w)
    for rows in (1, 2, 3, 5, 8, 16, 33, 70):
        x = rng.standard_normal((rows, shape[0])).astype(np.float32)
        out = product(x)
        assert out.shape == (rows, shape[1]) and out.dtype == np.float32
        np.testing.assert_allclose(out, x.astype(np.float64) @ w, rtol=1e-4, atol=1e-3)


def test_shipped_bundle_scores_the_same_without_blocked_products(monkeypatch):
    """The high-KL drums model is wide enough (512 units, 512 classes) for every blocked path."""
    bundle = load_bundle(BUNDLES / "musicvae_drums_2bar_hikl")
    with np.load(BUNDLES / "musicvae_drums_2bar_hikl" / "eval_slice.npz", allow_pickle=False) as npz:
        events = npz["events"][:3].astype(np.int64)
    fast = MusicVAE.from_bundle(bundle)
    mu, sigma = fast.encode(events)
    logits = fast.decoder_logits(mu, events)
    sampled = fast.decode(mu, np.random.default_rng(5), 0.0)
    with monkeypatch.context() as m:
        m.setattr(layers.Product, "__call__", lambda self, x: x @ self.matrix)
        plain = MusicVAE.from_bundle(bundle)
        plain_mu, plain_sigma = plain.encode(events)
        np.testing.assert_allclose(mu, plain_mu, atol=1e-4)
        np.testing.assert_allclose(sigma, plain_sigma, atol=1e-4)
        np.testing.assert_allclose(logits, plain.decoder_logits(plain_mu, events), atol=1e-3)
        assert (plain.decode(plain_mu, np.random.default_rng(5), 0.0) == sampled).mean() > 0.99


def test_sampling_logits_draws_as_the_normalised_softmax_does():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((64, 40)).astype(np.float32) * 3
    logits[:, 5] = -np.inf  # a masked class is never drawn
    a = layers.sample_logits(logits, 0.7, np.random.default_rng(9))
    b = layers.sample_categorical(layers.softmax(logits, 0.7), np.random.default_rng(9))
    assert (a == b).mean() > 0.95 and not (a == 5).any()


def test_a_column_view_multiplies_by_the_leading_columns_without_a_copy():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((96, 300)).astype(np.float32)
    product = Product(w)
    for stop in (64, 100, 300):
        view = product.columns(stop)
        assert np.shares_memory(view.blocks, product.blocks)
        x = rng.standard_normal((5, 96)).astype(np.float32)
        np.testing.assert_allclose(view(x), x.astype(np.float64) @ w[:, :stop], rtol=1e-4, atol=1e-3)
        assert np.array_equal(view.matrix, w[:, :stop])
