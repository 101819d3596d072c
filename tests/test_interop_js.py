"""`export --format magenta-js` against the real @magenta/music 1.23.1 under node, over loopback HTTP.

What is compared, on random-weight bundles of every layout that exports:
- MusicRNN (melody one-hot, drums 512-way with class bits folded in, and uint8-quantized):
  `continueSequenceAndReturnProbabilities(primer, 16, temperature 0)` returns softmax(logits)
  for each generated step and takes the argmax. The bridge's EventsRNN, fed the same primer
  followed by magenta.js's own argmax choices, must give the same probabilities at every step
  (max abs diff <= 1e-4), and its decoding of those events the same notes.
- MusicVAE (melody and drums): `encode` (posterior mean) against ours (<= 1e-4), and at
  temperature 0 (argmax) `decodeTensors` events and `decode` notes against ours, exactly.
  magenta.js 1.23.1's DrumsConverter writes the drum roll's "nothing hit" column one row early
  (TensorBuffer.set(1, i, -1) lands on row i - 1), so for drums its encoder input differs from
  Magenta's and ours: there the mean is compared with our encoder run on that same input, and
  the test also asserts the deviation is real (it fails once magenta.js fixes it).
The quantized checkpoint is compared with the bridge running the dequantized weights, read
back from the written files with bridge.interop.magenta_js.read_checkpoint.
"""
from __future__ import annotations

import numpy as np
import pytest

from bridge.bundle import load_bundle
from bridge.drums import GM_CLASS_PITCHES, DrumMap
from bridge.encodings.drums import DrumEncoding
from bridge.engine.layers import dense, softmax
from bridge.interop import lstm_layout
from bridge.interop.magenta_js import export_js, read_checkpoint
from bridge.models.events_rnn import EventsRNN
from bridge.models.music_vae import MusicVAE
from interop_js.mmjs import Unavailable, ensure_magenta_js, events_bundle, run_jobs, serve, vae_bundle

TOL = 1e-4
STEPS = 16
MELODY_PRIMER = [(60, 0, 2), (64, 4, 6), (67, 8, 12), (62, 12, 15)]
DRUM_PRIMER = [(36, 0, 1), (42, 0, 1), (42, 2, 3), (38, 4, 5), (42, 6, 7), (36, 8, 9), (46, 10, 11), (38, 12, 13)]
VAE_MELODIES = [[(60, 0, 4), (62, 4, 8), (64, 8, 16), (72, 20, 24), (55, 24, 31)], [(50, 2, 3), (93, 6, 30)]]
VAE_DRUMS = [[(36, 0, 1), (42, 4, 5), (38, 8, 9), (51, 12, 13), (36, 16, 17), (49, 24, 25)], [(45, 3, 4), (50, 30, 31)]]


@pytest.fixture(scope="module")
def package():
    try:
        return ensure_magenta_js()
    except Unavailable as exc:
        pytest.skip(f"magenta.js unavailable: {exc}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Bundles and their magenta.js checkpoints, under one served folder."""
    root = tmp_path_factory.mktemp("mmjs")
    bundles = {"rnn_melody": events_bundle(root / "b" / "rnn_melody", "melody", 16, 2, seed=1),
               "rnn_drums": events_bundle(root / "b" / "rnn_drums", "drums", 16, 2, seed=2),
               "vae_melody": vae_bundle(root / "b" / "vae_melody", "melody", 16, [12, 12], 8, seed=3),
               "vae_drums": vae_bundle(root / "b" / "vae_drums", "drums", 16, [16], 8, seed=4)}
    for name, path in bundles.items():
        export_js(path, root / "js" / name)
    export_js(bundles["rnn_melody"], root / "js" / "rnn_melody_uint8", quantize="uint8")
    return root, bundles


@pytest.fixture(scope="module")
def answers(package, exported):
    root, _ = exported
    rng = np.random.default_rng(9)
    z = {kind: rng.standard_normal((4, 8)).astype(np.float32) for kind in ("melody", "drums")}
    with serve(root / "js") as url:
        jobs = [{"kind": "rnn", "url": f"{url}/rnn_melody", "primer": MELODY_PRIMER, "primerSteps": 16, "steps": STEPS},
                {"kind": "rnn", "url": f"{url}/rnn_drums", "primer": DRUM_PRIMER, "primerSteps": 16, "steps": STEPS,
                 "isDrum": True},
                {"kind": "rnn", "url": f"{url}/rnn_melody_uint8", "primer": MELODY_PRIMER, "primerSteps": 16,
                 "steps": STEPS},
                {"kind": "vae", "url": f"{url}/vae_melody", "z": z["melody"].tolist(), "inputs": VAE_MELODIES,
                 "numSteps": 32},
                {"kind": "vae", "url": f"{url}/vae_drums", "z": z["drums"].tolist(), "inputs": VAE_DRUMS,
                 "numSteps": 32, "isDrum": True}]
        results = run_jobs(package, jobs)
    return dict(zip(("rnn_melody", "rnn_drums", "rnn_melody_uint8", "vae_melody", "vae_drums"), results)), z


def _primer_events(model: EventsRNN, notes) -> np.ndarray:
    if model.kind == "drums":
        gm = DrumMap.parse("36,38,42,46,45,48,50,49,51")
        return model.encoding.encode([(gm.classify(p), s) for p, s, _ in notes], 16)
    return model.encoding.encode(notes, 16)


def _check_rnn(model: EventsRNN, answer: dict, primer) -> None:
    probs = np.asarray(answer["probs"], np.float32)
    assert probs.shape == (STEPS, model.encoding.num_classes)
    chosen = probs.argmax(-1)
    events = np.concatenate([_primer_events(model, primer), chosen])[None]
    ours = softmax(model.logits(events)[0, 15:15 + STEPS])
    assert np.abs(ours - probs).max() <= TOL
    if model.kind == "drums":
        notes = [[GM_CLASS_PITCHES[c][0], s, s + 1] for c, s in model.encoding.decode(chosen)]
    else:
        notes = [list(n) for n in model.encoding.decode(chosen)]
    assert sorted(notes, key=lambda n: (n[1], n[0])) == answer["notes"]


@pytest.mark.parametrize("name,primer", [("rnn_melody", MELODY_PRIMER), ("rnn_drums", DRUM_PRIMER)])
def test_music_rnn_next_step_probabilities_match(exported, answers, name, primer):
    _check_rnn(EventsRNN.from_bundle(load_bundle(exported[1][name])), answers[0][name], primer)
    assert len(set(np.asarray(answers[0][name]["probs"]).argmax(-1))) > 1  # the weights make choices, not one class


def test_uint8_checkpoint_runs_in_magenta_js_as_dequantized(exported, answers):
    root, bundles = exported
    bundle = load_bundle(bundles["rnn_melody"])
    _, tensors = read_checkpoint(root / "js" / "rnn_melody_uint8")
    weights = dict(bundle.weights)
    for k in range(2):
        prefix = f"rnn/multi_rnn_cell/cell_{k}/basic_lstm_cell/"
        kernel, recurrent, bias = lstm_layout.from_tf(tensors[prefix + "kernel"], tensors[prefix + "bias"])
        weights.update({f"lstm_{k}/kernel": kernel, f"lstm_{k}/recurrent_kernel": recurrent, f"lstm_{k}/bias": bias})
    weights["output/kernel"], weights["output/bias"] = tensors["fully_connected/weights"], tensors["fully_connected/biases"]
    assert np.abs(weights["lstm_0/kernel"] - bundle.weights["lstm_0/kernel"]).max() > 1e-4  # really quantized
    _check_rnn(EventsRNN(bundle.config, weights), answers[0]["rnn_melody_uint8"], MELODY_PRIMER)


def _magenta_js_drum_roll(events: np.ndarray) -> np.ndarray:
    """magenta.js's drum VAE input: the 9 class bits, and in the last column whether the *next*
    step is silent (the last row 0), where Magenta's and ours say whether this step is."""
    following = np.zeros(events.shape, np.float32)
    following[:, :-1] = events[:, 1:] == 0
    return np.concatenate([DrumEncoding().bits(events), following[..., None]], axis=-1)


def _posterior_mean(model: MusicVAE, inputs: np.ndarray) -> np.ndarray:
    layer, = model.encoder
    _, h_fw, h_bw = layer.run(inputs, outputs=False)
    return dense(np.concatenate([h_fw, h_bw], axis=-1), model.w["encoder/mu/kernel"], model.w["encoder/mu/bias"])


@pytest.mark.parametrize("kind,inputs", [("melody", VAE_MELODIES), ("drums", VAE_DRUMS)])
def test_music_vae_encodes_and_decodes_the_same_notes(exported, answers, kind, inputs):
    model = MusicVAE.from_bundle(load_bundle(exported[1][f"vae_{kind}"]))
    answer, z = answers[0][f"vae_{kind}"], answers[1][kind]
    encoding = model.hp.encoding
    if kind == "drums":
        gm = DrumMap.parse("36,38,42,46,45,48,50,49,51")
        events = np.stack([encoding.encode([(gm.classify(p), s) for p, s, _ in seq], 32) for seq in inputs])
    else:
        events = np.stack([encoding.encode(seq, 32) for seq in inputs])
    events = events.astype(np.int64)
    mu, _ = model.encode(events)
    if kind == "drums":
        assert np.abs(mu - np.asarray(answer["mu"])).max() > TOL
        mu = _posterior_mean(model, _magenta_js_drum_roll(events))
    assert np.abs(mu - np.asarray(answer["mu"])).max() <= TOL
    decoded = model.decode(z, np.random.default_rng(0), temperature=0)
    assert decoded.tolist() == answer["events"]
    assert len(np.unique(decoded)) > 2
    for row, notes in zip(decoded, answer["notes"]):
        if kind == "drums":
            ours = [[GM_CLASS_PITCHES[c][0], s, s + 1] for c, s in encoding.decode(row)]
        else:
            ours = [list(n) for n in encoding.decode(row)]
        assert sorted(ours, key=lambda n: (n[1], n[0])) == notes
