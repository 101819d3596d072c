"""`magenta-bridge import`: Magenta checkpoints written by TF's own v1 Saver, imported as
bundles whose NumPy serving classes give the logits the TF graph gives (max abs diff <= 1e-4),
and clear refusals for layouts our serving classes cannot run exactly."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from bridge.bundle import load_bundle  # noqa: E402
from bridge.cli import main  # noqa: E402
from bridge.encodings import groove as enc  # noqa: E402
from bridge.engine.layers import dense  # noqa: E402
from bridge.interop.magenta_import import ImportRefused, convert  # noqa: E402
from bridge.interop.tf_checkpoint import Checkpoint, CheckpointError, read_checkpoint  # noqa: E402
from bridge.models.events_rnn import EventsRNN  # noqa: E402
from bridge.models.groovae import GrooVAE  # noqa: E402
from bridge.models.music_vae import MusicVAE  # noqa: E402
from interop_tf_graphs import EventsRNNGraph, MusicVAEGraph, write_mag  # noqa: E402

TOL = 1e-4


def _one_hot(events: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[events]


@pytest.mark.parametrize("generator_id,classes,units,names", [("basic_rnn", 38, (16, 16), ("kernel", "bias")),
                                                               ("mono_rnn", 130, (12, 20), ("weights", "biases"))])
def test_mag_events_rnn_logits_match_tf(tmp_path, capsys, generator_id, classes, units, names):
    steps = 24
    graph = EventsRNNGraph(classes, classes, units, steps, seed=classes, names=names)
    mag = write_mag(tmp_path / f"{generator_id}.mag", graph.save(tmp_path / "v1" / "model.ckpt", v1=True), generator_id)
    assert main(["import", str(mag), "-o", str(tmp_path / "bundle")]) == 0
    assert "MelodyRNN" in capsys.readouterr().out
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.config["source"]["generator_id"] == generator_id
    assert f"generator id: {generator_id}" in (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    model = EventsRNN.from_bundle(bundle)
    events = np.random.default_rng(1).integers(0, classes, (3, steps))
    reference = graph.run(graph.logits, {graph.x: _one_hot(events, classes)})
    assert np.abs(model.logits(events) - reference).max() <= TOL
    low, high = bundle.config["converter_args"]["min_pitch"], bundle.config["converter_args"]["max_pitch"]
    assert model.encoding.num_classes == classes and (low, high) == ((48, 83) if classes == 38 else (0, 127))


def _vae_inputs(rng, classes: int, steps: int, batch: int = 3):
    events = rng.integers(0, classes, (batch, steps))
    target = _one_hot(events, classes)
    previous = np.concatenate([np.zeros_like(target[:, :1]), target[:, :-1]], axis=1)
    return events, target, previous


def test_music_vae_melody_checkpoint_matches_tf(tmp_path):
    steps, z_size = 32, 8
    graph = MusicVAEGraph(90, 90, 16, (16, 12), z_size, steps, seed=3)
    graph.save(tmp_path / "ckpt" / "cat-mel_2bar_small.ckpt", v1=False)
    assert main(["import", str(tmp_path / "ckpt"), "-o", str(tmp_path / "vae")]) == 0
    bundle = load_bundle(tmp_path / "vae")
    assert bundle.config["hparams"]["bars"] == 2 and bundle.config["kind"] == "melody"
    model = MusicVAE.from_bundle(bundle)
    rng = np.random.default_rng(4)
    events, target, previous = _vae_inputs(rng, 90, steps)
    z = rng.standard_normal((3, z_size)).astype(np.float32)
    mu, sigma, logits = graph.reference(target, z, previous)
    ours_mu, ours_sigma = model.encode(events)
    assert np.abs(ours_mu - mu).max() <= TOL and np.abs(ours_sigma - sigma).max() <= TOL
    assert np.abs(model.decoder_logits(z, events) - logits).max() <= TOL


def _groove_logits(model: GrooVAE, z: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Teacher-forced decoder logits from the serving class's own parts (it has no such method)."""
    states, out = model.initial_state(z), []
    for t in range(previous.shape[1]):
        h, states = model.decoder.step(np.concatenate([previous[:, t], z], axis=-1), states)
        out.append(dense(h, model.w["out/kernel"], model.w["out/bias"]))
    return np.stack(out, axis=1)


def _magenta_groove_input(tensor: np.ndarray, config: str) -> np.ndarray:
    """Magenta's GrooveConverter encoder input: 27 channels, humanize zeroes velocities and
    offsets; tapify moves the loudest hit of each step to channel 3; fixed velocities zeroes them."""
    n = 9
    hits, velocities, offsets = tensor[..., :n], tensor[..., n:2 * n], tensor[..., 2 * n:]
    out = np.zeros_like(tensor)
    if "humanize" in config:
        out[..., :n] = hits
        return out
    loudest = np.argmax(velocities, axis=-1)[..., None]
    out[..., 3] = np.take_along_axis(hits, loudest, -1)[..., 0]
    out[..., 2 * n + 3] = np.take_along_axis(offsets, loudest, -1)[..., 0]
    if "fixed_velocity" not in config:
        out[..., n + 3] = np.take_along_axis(velocities, loudest, -1)[..., 0]
    return out


def _performances(rng, batch: int, steps: int) -> np.ndarray:
    hits = (rng.random((batch, steps, 9)) < 0.3).astype(np.float32)
    velocities = rng.uniform(0.2, 1.0, hits.shape).astype(np.float32) * hits
    offsets = rng.uniform(-0.9, 0.9, hits.shape).astype(np.float32) * hits
    return np.concatenate([hits, velocities, offsets], axis=-1)


@pytest.mark.parametrize("config,mode,tool", [("groovae_2bar_humanize", "humanize", "groove"),
                                              ("groovae_2bar_tap_fixed_velocity", "tap", "drumify")])
def test_groovae_checkpoint_matches_tf(tmp_path, config, mode, tool):
    steps, z_size = enc.WINDOW_STEPS, 8
    graph = MusicVAEGraph(27, 27, 16, (16, 16), z_size, steps, seed=5)
    graph.save(tmp_path / "ckpt" / f"{config}.ckpt", v1=False)
    assert main(["import", str(tmp_path / "ckpt" / f"{config}.ckpt"), "-o", str(tmp_path / "g")]) == 0
    bundle = load_bundle(tmp_path / "g")
    assert bundle.config["hparams"]["mode"] == mode and bundle.config["tools"] == [tool]
    model = GrooVAE.from_bundle(bundle)
    rng = np.random.default_rng(6)
    performance = _performances(rng, 3, steps)
    previous = np.concatenate([np.zeros_like(performance[:, :1]), performance[:, :-1]], axis=1)
    z = rng.standard_normal((3, z_size)).astype(np.float32)
    mu, sigma, logits = graph.reference(_magenta_groove_input(performance, config), z, previous)
    ours_mu, ours_sigma = model.encode(enc.encoder_inputs(performance, mode))
    assert np.abs(ours_mu - mu).max() <= TOL and np.abs(ours_sigma - sigma).max() <= TOL
    assert np.abs(_groove_logits(model, z, previous) - logits).max() <= TOL


# --- refusals, decided from names and shapes alone (no TF needed to build them) ---------------

def _rng_arrays(shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def _events_vars(inputs: int, classes: int, units: int = 8, extra: dict | None = None) -> dict[str, np.ndarray]:
    return _rng_arrays({"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel": (inputs + units, 4 * units),
                        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias": (4 * units,),
                        "fully_connected/weights": (units, classes), "fully_connected/biases": (classes,),
                        **(extra or {})})


def _vae_vars(enc_in: int, out: int, z: int = 4, enc_layers: int = 1, control: int = 0, extra=None):
    u = 8
    shapes = {"encoder/mu/kernel": (2 * u, z), "encoder/mu/bias": (z,), "encoder/sigma/kernel": (2 * u, z),
              "encoder/sigma/bias": (z,), "decoder/z_to_initial_state/kernel": (z, 2 * u),
              "decoder/z_to_initial_state/bias": (2 * u,),
              "decoder/multi_rnn_cell/cell_0/lstm_cell/kernel": (out + z + control + u, 4 * u),
              "decoder/multi_rnn_cell/cell_0/lstm_cell/bias": (4 * u,),
              "decoder/output_projection/kernel": (u, out), "decoder/output_projection/bias": (out,)}
    for layer in range(enc_layers):
        for d in ("fw", "bw"):
            prefix = f"encoder/cell_{layer}/bidirectional_rnn/{d}/multi_rnn_cell/cell_0/lstm_cell/"
            shapes[prefix + "kernel"] = ((enc_in if layer == 0 else 2 * u) + u, 4 * u)
            shapes[prefix + "bias"] = (4 * u,)
    return _rng_arrays({**shapes, **(extra or {})})


REFUSALS = {
    "attention wrapper without its cell": (_events_vars(38, 38, extra={
        "rnn/multi_rnn_cell/cell_0/attention_cell_wrapper/attention/attn_v": (8,)}), "attention_rnn", "lacks rnn/"),
    "unknown encoding": (_events_vars(50, 20), "my_rnn", "input size 50 with 20 classes"),
    "unplaced variable": (_events_vars(38, 38, extra={"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/w_f_diag": (8,)}),
                          "basic_rnn", "could not place 1 variable(s): rnn/multi_rnn_cell/cell_0/basic_lstm_cell/w_f_diag [8]"),
    "groovae with two encoder layers": (_vae_vars(27, 27, enc_layers=2), "groovae_2bar_humanize", "2 encoder layers"),
    "chord conditioning": (_vae_vars(90, 90, control=37), "cat-mel_2bar_med_chords", "37 control inputs"),
    "hierarchical encoder": (_vae_vars(90, 90, extra={
        "encoder/hierarchical_level_0/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel": (98, 32)}),
        "hier-mel_16bar", "hierarchical (per-bar) encoder"),
    "conductor without cells": (_vae_vars(90, 90, extra={"decoder/hierarchical_level_0/initial_state/kernel": (4, 16)}),
                                "hierdec-mel_16bar", "core_decoder/decoder/multi_rnn_cell"),
    "trio": (_vae_vars(90, 90, extra={"core_decoder_0/decoder/output_projection/bias": (90,)}), "flat-trio_16bar",
             "one decoder per track"),
    "melody window unknown": (_vae_vars(90, 90), "model", "pass --config"),
    "groovae mode unknown": (_vae_vars(27, 27), "groovae_4bar", "2-bar humanize or tap"),
    "not magenta": (_rng_arrays({"dense/kernel": (3, 3)}), "x", "neither a MelodyRNN/DrumsRNN"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unsupported_layouts_are_refused_with_the_reason(case):
    variables, hint, reason = REFUSALS[case]
    with pytest.raises(ImportRefused) as info:
        convert(Checkpoint(variables, f"/models/{hint}.ckpt", generator_id=None))
    assert reason in str(info.value), str(info.value)


def test_unreadable_paths_raise_checkpoint_errors(tmp_path):
    (tmp_path / "junk.mag").write_bytes(b"\xff\x00 not a protobuf")
    (tmp_path / "junk.ckpt").write_bytes(b"nothing here")
    for path, message in ((tmp_path / "junk.mag", "GeneratorBundle"), (tmp_path / "junk.ckpt", "not a readable"),
                          (tmp_path / "missing", "no such checkpoint")):
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(path)
