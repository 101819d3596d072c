"""The serving engine's speed paths (row-wise matmul, BLAS threads) change timing, not results."""
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from bridge.bundle import load_bundle
from bridge.engine import blas, layers
from bridge.models import music_vae
from bridge.models.music_vae import MusicVAE

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"


def test_row_wise_matmul_equals_one_product():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((512, 2048)).astype(np.float32)
    for rows in (1, 2, 3, 4, 5):
        x = rng.standard_normal((rows, 512)).astype(np.float32)
        out = layers.matmul(x, w)
        assert out.shape == (rows, 2048) and out.dtype == np.float32
        np.testing.assert_allclose(out, x.astype(np.float64) @ w, rtol=1e-4, atol=1e-3)


def _blas_threads() -> int:
    return ThreadpoolController().select(user_api="blas").info()[0]["num_threads"]


def test_threads_only_for_big_batches_within_the_workers_budget(monkeypatch):
    monkeypatch.setattr(blas, "_budget", blas.budget())  # restored after the test
    monkeypatch.setattr(blas, "_cores", lambda: 4)
    blas.set_workers(1)
    assert blas.budget() == blas.MAX_THREADS == 2
    before = _blas_threads()
    with blas.threads_for(32, 512):
        assert _blas_threads() == 2
    assert _blas_threads() == before
    with blas.threads_for(1, 512):  # a wide layer gains even for one row
        assert _blas_threads() == 2
    with blas.threads_for(8, 256):  # a narrow one only from 16 rows
        assert _blas_threads() == before
    with blas.threads_for(16, 256):
        assert _blas_threads() == 2
    blas.set_workers(4)  # four tools at once: one core each, no extra threads
    assert blas.budget() == 1
    with blas.threads_for(32, 512):
        assert _blas_threads() == before


def test_shipped_bundle_scores_the_same_without_the_speed_paths(monkeypatch):
    """The high-KL drums model is wide enough (512 units, 512 classes) for every fast path."""
    bundle = load_bundle(BUNDLES / "musicvae_drums_2bar_hikl")
    with np.load(BUNDLES / "musicvae_drums_2bar_hikl" / "eval_slice.npz", allow_pickle=False) as npz:
        events = npz["events"][:3].astype(np.int64)
    fast = MusicVAE.from_bundle(bundle)
    mu, sigma = fast.encode(events)
    logits = fast.decoder_logits(mu, events)
    sampled = fast.decode(mu, np.random.default_rng(5), 0.0)
    with monkeypatch.context() as m:
        for module in (layers, music_vae):
            m.setattr(module, "matmul", np.matmul)
        m.setattr(blas, "threads_for", lambda rows, units: nullcontext())
        plain = MusicVAE.from_bundle(bundle)
        plain_mu, plain_sigma = plain.encode(events)
        np.testing.assert_allclose(mu, plain_mu, atol=1e-4)
        np.testing.assert_allclose(sigma, plain_sigma, atol=1e-4)
        np.testing.assert_allclose(logits, plain.decoder_logits(plain_mu, events), atol=1e-3)
        assert (plain.decode(plain_mu, np.random.default_rng(5), 0.0) == sampled).mean() > 0.99
