"""Bundles -> magenta.js checkpoints: config.json, weights_manifest.json and shard files.

magenta.js (`@magenta/music`) loads a folder over HTTP: config.json ({type: MusicRNN or
MusicVAE, dataConverter {type, args}}) and a tfjs weights manifest whose weight names are the
TF variable names Magenta's graphs use. Weights go back to TF's LSTM layout
(bridge.interop.lstm_layout) and may be quantized to uint8/uint16 with tfjs' affine scheme
(value = min + scale * q, per tensor).

magenta.js feeds each network the one-hot of an event (MusicRNN input, MusicVAE decoder
feedback), while our inputs are any fixed function of the event (drum class bits, a 10-wide
drum roll). Such an input folds exactly into one kernel row per event, so those bundles
export. What does not fold is refused: lookback features and step counters (magenta.js's
BinaryCounter counts the next step, ours the current one), and GrooVAE (magenta.js feeds
velocities and offsets back unmasked, ours masks them by the sampled hits).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bridge.bundle import atomic_write, load_bundle
from bridge.drums import GM_CLASS_PITCHES
from bridge.interop import lstm_layout

SHARD_BYTES = 4 * 1024 * 1024  # tfjs' own shard size
QUANTIZE = {"uint8": np.uint8, "uint16": np.uint16}
_RNN_CELL = "rnn/multi_rnn_cell/cell_{}/basic_lstm_cell/"
_ENC_CELL = "encoder/cell_0/bidirectional_rnn/{}/multi_rnn_cell/cell_0/lstm_cell/"
_DEC_CELL = "decoder/multi_rnn_cell/cell_{}/lstm_cell/"


class ExportRefused(ValueError):
    """A bundle magenta.js cannot run exactly as the bridge does; the message says why."""


def export_js(bundle_dir: str | Path, output: str | Path, quantize: str | None = None) -> Path:
    """Write the magenta.js checkpoint of a bundle into `output`."""
    bundle = load_bundle(bundle_dir)
    spec, tensors = js_checkpoint(bundle.config, bundle.weights)
    write_checkpoint(output, spec, tensors, quantize)
    return Path(output)


def js_checkpoint(config: dict, weights: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """magenta.js's config.json spec and its float32 weights under TF variable names."""
    model_class = config["model_class"]
    if model_class == "events_rnn":
        return _music_rnn(config, weights)
    if model_class == "music_vae":
        return _music_vae(config, weights)
    if model_class == "groovae":
        raise ExportRefused(f"bundle {config['name']}: magenta.js's GrooveDecoder feeds velocities and offsets back "
                            "unmasked and reads all 27 channels in the encoder, while the groovae serving class masks "
                            "them by the sampled hits and reads only its mode's channels; the notes would differ")
    raise ExportRefused(f"bundle {config['name']}: magenta.js has no counterpart for model class {model_class!r}")


def _tf_cell(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    tf_kernel, tf_bias = lstm_layout.to_tf(kernel, recurrent, bias)
    return {prefix + "kernel": tf_kernel, prefix + "bias": tf_bias}


def _drum_pitch_classes() -> list[list[int]]:
    """Our GM drum classes: magenta.js maps primer pitches through them and plays each class's first."""
    return [list(group) for group in GM_CLASS_PITCHES]


def _music_rnn(config: dict, weights: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    from bridge.models.events_rnn import event_features

    hp, name = config["hparams"], config["name"]
    if hp.get("lookback") or hp.get("counter_bits") or hp.get("meter"):
        inputs = (f"look back {hp['lookback']} and {2 * hp['lookback']} bars of the clip's meter and read bar and "
                  "beat positions" if hp.get("meter") else
                  f"use lookback {hp.get('lookback')} and {hp.get('counter_bits')} step-counter bits")
        raise ExportRefused(
            f"bundle {name}: its inputs {inputs}; magenta.js's MusicRNN feeds only the event's one-hot plus, optionally, a BinaryCounter of the "
            "*next* step, so neither the lookback features nor our current-step counters can be expressed. "
            "Export an events_rnn trained with lookback=0,counter_bits=0 (the basic_rnn / one-hot layout)")
    features = event_features(config["converter"], config["converter_args"], hp)
    encoding = features.encoding
    if config["converter"] == "melody":
        converter = {"type": "MelodyConverter", "args": {"minPitch": encoding.min_pitch, "maxPitch": encoding.max_pitch}}
    else:
        converter = {"type": "DrumsOneHotConverter", "args": {"pitchClasses": _drum_pitch_classes()}}
    tensors: dict[str, np.ndarray] = {}
    for k in range(hp["layers"]):
        kernel = weights[f"lstm_{k}/kernel"]
        if k == 0:  # our input is a function of the event alone: one folded row per event
            kernel = encoding.embed(np.arange(encoding.num_classes)) @ kernel
        tensors.update(_tf_cell(kernel, weights[f"lstm_{k}/recurrent_kernel"], weights[f"lstm_{k}/bias"],
                                _RNN_CELL.format(k)))
    tensors["fully_connected/weights"] = weights["output/kernel"]
    tensors["fully_connected/biases"] = weights["output/bias"]
    return {"type": "MusicRNN", "dataConverter": converter}, tensors


def _music_vae(config: dict, weights: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    from bridge.models.music_vae import VAEHparams, input_table

    hp = VAEHparams.from_config(config["kind"], config["hparams"])
    if len(set(hp.dec_units)) > 1:
        raise ExportRefused(f"bundle {config['name']}: decoder layers of sizes {list(hp.dec_units)}; magenta.js splits "
                            "the initial state tanh(dense(z)) into equal parts, so every decoder layer must be one size")
    if hp.enc_layers != 1 or hp.segments:
        raise ExportRefused(f"bundle {config['name']}: {hp.enc_layers} encoder layers"
                            f"{', a conductor' if hp.segments else ''}; magenta.js's MusicVAE runs a one-layer flat "
                            "encoder, and a conductor only with its per-track hierarchical encoder")
    if hp.dec_position:
        raise ExportRefused(f"bundle {config['name']}: its decoder reads step-counter bits; magenta.js's MusicVAE "
                            "decoder reads only the previous event and z")
    table = input_table(hp.kind, hp.num_classes) if hp.dec_feedback == "table" else np.eye(hp.num_classes, dtype=np.float32)
    if hp.kind == "melody":
        converter = {"type": "MelodyConverter",
                     "args": {"minPitch": hp.min_pitch, "maxPitch": hp.max_pitch, "numSteps": hp.steps}}
    else:  # encoder input: magenta.js's drum roll is our table's 9 class bits + "nothing hit"
        converter = {"type": "DrumsConverter", "args": {"numSteps": hp.steps, "pitchClasses": _drum_pitch_classes()}}
    tensors: dict[str, np.ndarray] = {}
    for direction in ("fw", "bw"):
        tensors.update(_tf_cell(*(weights[f"encoder/{direction}/{p}"] for p in ("kernel", "recurrent_kernel", "bias")),
                                _ENC_CELL.format(direction)))
    for k in range(len(hp.dec_units)):
        kernel = weights[f"decoder/lstm_{k}/kernel"]
        if k == 0:  # magenta.js feeds back the one-hot of the previous event: fold our feedback rows into it
            width = table.shape[1]
            kernel = np.concatenate([table @ kernel[:width], kernel[width:]], axis=0)
        tensors.update(_tf_cell(kernel, weights[f"decoder/lstm_{k}/recurrent_kernel"], weights[f"decoder/lstm_{k}/bias"],
                                _DEC_CELL.format(k)))
    swap = lstm_layout.swap_state_halves(list(hp.dec_units))
    tensors["decoder/z_to_initial_state/kernel"] = weights["decoder/z_to_state/kernel"][:, swap]
    tensors["decoder/z_to_initial_state/bias"] = weights["decoder/z_to_state/bias"][swap]
    for ours, theirs in (("encoder/mu", "encoder/mu"), ("encoder/sigma", "encoder/sigma"),
                         ("decoder/out", "decoder/output_projection")):
        tensors[f"{theirs}/kernel"], tensors[f"{theirs}/bias"] = weights[f"{ours}/kernel"], weights[f"{ours}/bias"]
    return {"type": "MusicVAE", "dataConverter": converter}, tensors


def quantize(array: np.ndarray, dtype: str) -> tuple[np.ndarray, dict]:
    """tfjs affine quantization of one tensor: (codes, {dtype, min, scale}); value = min + scale * q."""
    if dtype not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, got {dtype!r}")
    array = np.asarray(array, np.float32)
    levels = np.iinfo(QUANTIZE[dtype]).max
    low, high = float(array.min()), float(array.max())
    scale = (high - low) / levels if high > low else 1.0
    codes = np.clip(np.round((array - low) / scale), 0, levels).astype(QUANTIZE[dtype])
    return codes, {"dtype": dtype, "min": low, "scale": scale}


def read_checkpoint(folder: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """A written magenta.js checkpoint read back as tfjs reads it: (spec, float32 tensors),
    quantized weights dequantized. Lets a caller run the exact weights magenta.js runs."""
    folder = Path(folder)
    spec = json.loads((folder / "config.json").read_text())
    tensors: dict[str, np.ndarray] = {}
    for group in json.loads((folder / "weights_manifest.json").read_text()):
        blob, at = b"".join((folder / p).read_bytes() for p in group["paths"]), 0
        for entry in group["weights"]:
            count = math.prod(entry["shape"])
            q = entry.get("quantization")
            dtype = np.dtype(QUANTIZE[q["dtype"]] if q else np.float32).newbyteorder("<")
            values = np.frombuffer(blob, dtype, count, at)
            at += count * dtype.itemsize
            if q:  # tfjs: v * scale + min, in float32
                values = values.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            tensors[entry["name"]] = values.astype(np.float32).reshape(entry["shape"])
    return spec, tensors


def write_checkpoint(output: str | Path, spec: dict, tensors: dict[str, np.ndarray], quantization: str | None = None) -> Path:
    """config.json, weights_manifest.json and `group1-shardNofM` files of at most SHARD_BYTES each."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    entries, chunks = [], []
    for name, array in tensors.items():
        array = np.asarray(array, np.float32)
        entry = {"name": name, "shape": list(array.shape), "dtype": "float32"}
        if quantization:
            codes, entry["quantization"] = quantize(array, quantization)
            chunks.append(codes.astype(codes.dtype.newbyteorder("<")).tobytes())
        else:
            chunks.append(array.astype("<f4").tobytes())
        entries.append(entry)
    blob = b"".join(chunks)
    count = max(1, math.ceil(len(blob) / SHARD_BYTES))
    paths = [f"group1-shard{i + 1}of{count}" for i in range(count)]
    for i, path in enumerate(paths):
        atomic_write(output / path, blob[i * SHARD_BYTES:(i + 1) * SHARD_BYTES])
    manifest = [{"paths": paths, "weights": entries}]
    atomic_write(output / "weights_manifest.json", (json.dumps(manifest) + "\n").encode())
    atomic_write(output / "config.json", (json.dumps(spec, indent=2) + "\n").encode())
    return output
