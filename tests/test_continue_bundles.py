"""The shipped MelodyRNN and DrumsRNN bundles: they load, their card's numbers are reproducible
from the files in the bundle, and Keras computes the same logits from their weights."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from bridge.bundle import load_bundle
from bridge.models.events_rnn import EventsRNN

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"
NAMES = ("melody_rnn", "drums_rnn")


@pytest.mark.parametrize("name", NAMES)
def test_eval_slice_reproduces_the_card(name):
    bundle = load_bundle(BUNDLES / name)
    model = EventsRNN.from_bundle(bundle)
    with np.load(bundle.path / bundle.config["eval"]["slice"]["file"], allow_pickle=False) as npz:
        events = npz["events"]
        # Meter-aware bundles store each row's meter grid and length beside its events.
        grids = npz["grid"] if "grid" in npz else None
        lengths = npz["length"] if "length" in npz else None
    nll, accuracy = model.nll(events, grids, lengths)
    card = (bundle.path / "MODEL_CARD.md").read_text()
    stated = re.search(r"exported model scores loss ([0-9]+\.[0-9]+), accuracy ([0-9]+\.[0-9]+)", card)
    assert stated, "the model card does not state the slice metrics"
    assert abs(nll - float(stated.group(1))) <= 1e-3 and abs(accuracy - float(stated.group(2))) <= 1e-3
    assert abs(nll - bundle.config["eval"]["slice"]["loss"]) <= 1e-4
    # The slice is a sample of the eval split, so its NLL is near the card's full-split figure.
    assert abs(nll - bundle.config["eval"]["loss"]) <= 0.35 * bundle.config["eval"]["loss"]
    assert f"| loss (NLL, nats per step) | {bundle.config['eval']['loss']:.4f} |" in card


@pytest.mark.parametrize("name", NAMES)
def test_card_names_data_license_and_baseline(name):
    bundle = load_bundle(BUNDLES / name)
    card = (bundle.path / "MODEL_CARD.md").read_text()
    assert ("MIT" if bundle.config["kind"] == "melody" else "CC BY 4.0") in card
    base = bundle.config["eval"]["baselines"]["ngram4_loss"]
    assert f"| ngram4 loss | {base:.4f} |" in card
    assert json.loads((bundle.path / "config.json").read_text())["tools"] == ["continue"]


@pytest.mark.parametrize("name", NAMES)
def test_keras_reads_the_bundle_to_the_same_logits(name):
    pytest.importorskip("keras")
    from bridge.models.configs import ModelConfig
    from bridge.train.families import events_rnn as family

    bundle = load_bundle(BUNDLES / name)
    cfg = bundle.config
    config = ModelConfig(cfg["name"], cfg["model_class"], cfg["kind"], tuple(cfg["tools"]), cfg["converter"],
                         cfg["converter_args"], cfg["hparams"])
    with np.load(bundle.path / "eval_slice.npz", allow_pickle=False) as npz:
        slice_ = {k: npz[k][:4] for k in npz.files}
    events = slice_["events"]
    batch = family.prepare_batch(slice_, config)
    net = family.build(config)
    net(batch)
    for layer in net.lstms:
        layer.set_weights([bundle.weights[f"{layer.name}/{p}"] for p in ("kernel", "recurrent_kernel", "bias")])
    net.out.set_weights([bundle.weights["output/kernel"], bundle.weights["output/bias"]])
    ours = EventsRNN.from_bundle(bundle).logits(events[:, :-1], slice_.get("grid"))
    assert np.abs(ours - np.asarray(net(batch))).max() <= 1e-4
