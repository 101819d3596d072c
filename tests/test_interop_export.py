"""`export --format magenta-js` without node: the tfjs manifest and shards read back to the weights (quantized
within half a step), and bundles magenta.js cannot run exactly are refused with the reason.
(tests/test_interop_js.py runs the exported files in magenta.js itself.)"""
from __future__ import annotations

import json

import numpy as np
import pytest

from bridge.bundle import load_bundle, save_bundle
from bridge.cli import main
from bridge.interop import magenta_js
from bridge.interop.magenta_js import ExportRefused, js_checkpoint, quantize, read_checkpoint, write_checkpoint
from bridge.models.configs import CONFIGS
from interop_js.mmjs import events_bundle, vae_bundle


def _tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a/kernel": rng.standard_normal((40, 24)).astype(np.float32), "a/bias": rng.standard_normal(24).astype(np.float32),
            "flat": np.full((3, 2), 0.25, np.float32)}


def test_float32_checkpoint_reads_back_exactly_across_shards(tmp_path, monkeypatch):
    monkeypatch.setattr(magenta_js, "SHARD_BYTES", 1000)
    tensors = _tensors()
    write_checkpoint(tmp_path, {"type": "MusicRNN"}, tensors)
    manifest = json.loads((tmp_path / "weights_manifest.json").read_text())
    total = sum(t.nbytes for t in tensors.values())
    assert len(manifest[0]["paths"]) == -(-total // 1000) > 1
    assert all((tmp_path / p).stat().st_size <= 1000 for p in manifest[0]["paths"])
    spec, back = read_checkpoint(tmp_path)
    assert spec == {"type": "MusicRNN"} and list(back) == list(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(back[name], value)


@pytest.mark.parametrize("dtype,itemsize", [("uint8", 1), ("uint16", 2)])
def test_quantized_checkpoint_is_within_half_a_step(tmp_path, dtype, itemsize):
    tensors = _tensors(1)
    write_checkpoint(tmp_path, {}, tensors, dtype)
    manifest = json.loads((tmp_path / "weights_manifest.json").read_text())[0]
    assert (tmp_path / manifest["paths"][0]).stat().st_size == sum(t.size for t in tensors.values()) * itemsize
    _, back = read_checkpoint(tmp_path)
    for entry in manifest["weights"]:
        q = entry["quantization"]
        assert q["dtype"] == dtype
        error = np.abs(back[entry["name"]] - tensors[entry["name"]]).max()
        assert error <= q["scale"] / 2 + 1e-6
    np.testing.assert_array_equal(back["flat"], tensors["flat"])  # a constant tensor comes back exactly
    codes, spec = quantize(tensors["a/kernel"], dtype)
    assert codes.min() == 0 and codes.max() == np.iinfo(codes.dtype).max and spec["min"] == tensors["a/kernel"].min()


@pytest.mark.parametrize("hparams,named", [
    ({"lookback": 16, "counter_bits": 5, "meter": False}, r"lookback 16 and 5 step-counter bits"),
    ({"lookback": 1, "counter_bits": 0, "meter": True}, r"look back 1 and 2 bars of the clip's meter and read bar")])
def test_lookback_layouts_are_refused_naming_the_features(hparams, named):
    config = CONFIGS["melody_rnn"]
    spec = {"name": "melody_rnn", "model_class": "events_rnn", "kind": config.kind, "converter": config.converter,
            "converter_args": config.converter_args, "hparams": {**config.hparams, **hparams}}
    with pytest.raises(ExportRefused, match=named + r".*BinaryCounter of the \*next\* step"):
        js_checkpoint(spec, {})


def test_groovae_and_unequal_decoder_layers_are_refused(tmp_path):
    with pytest.raises(ExportRefused, match="GrooveDecoder feeds velocities and offsets back unmasked"):
        js_checkpoint({"name": "g", "model_class": "groovae"}, {})
    bundle = load_bundle(vae_bundle(tmp_path / "v", "melody", 8, [8, 6], 4))
    with pytest.raises(ExportRefused, match=r"decoder layers of sizes \[8, 6\]"):
        js_checkpoint(bundle.config, bundle.weights)


def test_export_js_command(tmp_path, capsys):
    bundle = events_bundle(tmp_path / "rnn", "drums", 8, 1)
    assert main(["export", "--format", "magenta-js", str(bundle), "-o", str(tmp_path / "js"), "--quantize", "uint16"]) == 0
    spec = json.loads((tmp_path / "js" / "config.json").read_text())
    assert spec["type"] == "MusicRNN" and spec["dataConverter"]["type"] == "DrumsOneHotConverter"
    _, tensors = read_checkpoint(tmp_path / "js")
    # the 9 class-bit rows are folded into the 512 one-hot rows magenta.js feeds
    assert tensors["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"].shape == (512 + 8, 32)
    lookback = CONFIGS["drums_rnn"]
    save_bundle(tmp_path / "lb", {"name": "lb", "model_class": "events_rnn", "kind": "drums", "tools": ["continue"],
                                  "converter": "drums", "converter_args": {}, "hparams": lookback.hparams}, {}, "card")
    assert main(["export", "--format", "magenta-js", str(tmp_path / "lb"), "-o", str(tmp_path / "no")]) == 2
    assert "look back 1 and 2 bars" in capsys.readouterr().err and not (tmp_path / "no").exists()


def test_exported_names_are_the_tf_variables_magenta_js_loads(tmp_path):
    bundle = load_bundle(vae_bundle(tmp_path / "v", "drums", 8, [6, 6], 4))
    _, tensors = js_checkpoint(bundle.config, bundle.weights)
    assert sorted(tensors) == sorted(
        [f"encoder/cell_0/bidirectional_rnn/{d}/multi_rnn_cell/cell_0/lstm_cell/{p}" for d in ("fw", "bw")
         for p in ("kernel", "bias")]
        + [f"decoder/multi_rnn_cell/cell_{k}/lstm_cell/{p}" for k in (0, 1) for p in ("kernel", "bias")]
        + [f"{n}/{p}" for n in ("encoder/mu", "encoder/sigma", "decoder/z_to_initial_state", "decoder/output_projection")
           for p in ("kernel", "bias")])
    # magenta.js feeds the decoder the previous event's 512-way one-hot, then z
    assert tensors["decoder/multi_rnn_cell/cell_0/lstm_cell/kernel"].shape == (512 + 4 + 6, 24)


def test_export_refuses_unknown_model_class():
    with pytest.raises(ExportRefused, match="no counterpart for model class 'coconet'"):
        js_checkpoint({"name": "c", "model_class": "coconet"}, {})


def test_export_refuses_what_magenta_js_cannot_run(tmp_path):
    """Imported stacked-encoder or hierarchical MusicVAEs, and our position-reading decoders,
    have no magenta.js equivalent."""
    from bridge.interop.magenta_js import ExportRefused, _music_vae

    hparams = {"bars": 2, "enc_units": 4, "dec_units": [4], "z_size": 2}
    for extra, words in (({"enc_layers": 2}, "2 encoder layers"), ({"conductor_units": [4], "segments": 2}, "a conductor"),
                         ({"dec_position": True}, "step-counter bits")):
        with pytest.raises(ExportRefused, match=words):
            _music_vae({"name": "x", "kind": "melody", "hparams": {**hparams, **extra}}, {})
