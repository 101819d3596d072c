"""Magenta checkpoints -> bundles our NumPy serving classes run with the same logits.

The architecture is read from variable names and shapes (and the generator id or config name
where there is one); weights are converted with bridge.interop.lstm_layout. A layout is
imported only where our serving class computes exactly what Magenta's graph computed:

  MelodyRNN basic_rnn / mono_rnn  -> events_rnn (one-hot melody in, no lookback, no counters)
  MusicVAE cat-mel_2bar_*         -> music_vae melody (90 classes, pitches 21-108)
  GrooVAE humanize / tap          -> groovae (encoder rows Magenta always fed zeros are dropped)

Everything else is refused with the reason: Magenta's lookback and key encodings, its
AttentionCellWrapper, drum_kit's counters, drum MusicVAE's 512-wide decoder feedback,
hierarchical, NADE and control-conditioned models, multi-layer encoders, and any variable the
layout cannot place (named in the message).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.bundle import save_bundle
from bridge.interop import lstm_layout
from bridge.interop.tf_checkpoint import Checkpoint, read_checkpoint

# Magenta's one-hot melody encodings, by class count: (min pitch, max pitch inclusive, config).
MELODY_RANGES = {38: (48, 83, "basic_rnn"), 130: (0, 127, "mono_rnn")}
VAE_MELODY = (21, 108)  # MusicVAE's OneHotMelodyConverter: the 88 piano keys + 2 = 90 classes
VAE_MELODY_CLASSES = VAE_MELODY[1] - VAE_MELODY[0] + 3
GROOVE_DRUMS = 9
GROOVE_TAP_CHANNEL = 3  # Magenta's tapify writes every onset to the open hi-hat channel
STEPS_PER_BAR = 16

_RNN_CELL = "rnn/multi_rnn_cell/cell_{}/{}/"
_ENC_CELL = "encoder/cell_{}/bidirectional_rnn/{}/multi_rnn_cell/cell_0/lstm_cell/"
_DEC_CELL = "decoder/multi_rnn_cell/cell_{}/lstm_cell/"


class ImportRefused(ValueError):
    """A checkpoint this bridge will not import; the message says what it cannot serve and why."""


@dataclass(frozen=True)
class Imported:
    config: dict
    weights: dict[str, np.ndarray]
    layout: str  # one line for the model card: what Magenta model this was


class _Variables:
    """A checkpoint's variables, remembering which ones a layout has placed."""

    def __init__(self, variables: dict[str, np.ndarray], label: str) -> None:
        self._all, self._placed, self.label = variables, set(), label

    def has(self, name: str) -> bool:
        return name in self._all

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self._all:
            raise ImportRefused(f"{self.label}: variable {name} is missing")
        return self._all[name].shape

    def matching(self, pattern: str) -> list[str]:
        return sorted(n for n in self._all if re.search(pattern, n))

    def take(self, name: str) -> np.ndarray:
        if name not in self._all:
            raise ImportRefused(f"{self.label}: variable {name} is missing")
        self._placed.add(name)
        return self._all[name]

    def lstm(self, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A cell's weights in our layout; TF before 1.2 named them weights/biases (older .mag files)."""
        kernel, bias = ("kernel", "bias") if self.has(prefix + "kernel") else ("weights", "biases")
        return lstm_layout.from_tf(self.take(prefix + kernel), self.take(prefix + bias))

    def dense(self, prefix: str, kernel: str = "kernel", bias: str = "bias") -> tuple[np.ndarray, np.ndarray]:
        return self.take(prefix + kernel), self.take(prefix + bias)

    def count(self, template: str, *args: str) -> int:
        """How many cells 0, 1, ... exist under `template` (with either TF naming)."""
        n = 0
        while self.has(template.format(n, *args) + "kernel") or self.has(template.format(n, *args) + "weights"):
            n += 1
        return n

    def cell_shapes(self, prefix: str) -> tuple[int, int]:
        """(inputs, units) of a TF cell from its kernel [inputs + units, 4 units]."""
        kernel = prefix + ("kernel" if self.has(prefix + "kernel") else "weights")
        units = self.shape(kernel)[1] // 4
        return self.shape(kernel)[0] - units, units

    def check_all_placed(self, layout: str) -> None:
        left = sorted(set(self._all) - self._placed)
        if left:
            shown = ", ".join(f"{n} {list(self._all[n].shape)}" for n in left[:8])
            more = f" and {len(left) - 8} more" if len(left) > 8 else ""
            raise ImportRefused(f"{self.label}: read as {layout}, but could not place {len(left)} variable(s): "
                                f"{shown}{more}; this layout is not one the bridge can serve")


def convert(ckpt: Checkpoint, config_name: str | None = None, name: str = "imported") -> Imported:
    """The bundle config and weights for a checkpoint, or ImportRefused saying why not."""
    hint = config_name or ckpt.hint
    v = _Variables(ckpt.variables, f"{Path(ckpt.source).name} ({hint})")
    if not ckpt.variables:
        raise ImportRefused(f"{v.label}: the checkpoint holds no weight variables")
    if v.has("fully_connected/weights") or v.matching(r"^rnn/"):
        imported = _events_rnn(v, hint, name)
    elif v.matching(r"^(encoder|decoder|core_decoder)") and v.has("encoder/mu/kernel"):
        imported = _music_vae(v, hint, name)
    else:
        shown = ", ".join(sorted(ckpt.variables)[:8])
        raise ImportRefused(f"{v.label}: neither a MelodyRNN/DrumsRNN (rnn/..., fully_connected/...) nor a MusicVAE "
                            f"(encoder/..., decoder/...) layout; variables: {shown}")
    v.check_all_placed(imported.layout)
    source = {"path": str(ckpt.source), "generator_id": ckpt.generator_id, "description": ckpt.description,
              "config": hint}
    return Imported({**imported.config, "source": source}, imported.weights, imported.layout)


# --- MelodyRNN / DrumsRNN ------------------------------------------------------------------------

def _events_rnn(v: _Variables, hint: str, name: str) -> Imported:
    refuse = lambda why: ImportRefused(f"{v.label}: cannot serve this events RNN exactly: {why}. Supported: "  # noqa: E731
                                       "MelodyRNN basic_rnn / mono_rnn (one-hot melody input, no attention)")
    attention = v.matching("attention_cell_wrapper")
    if attention:
        raise refuse(f"its first LSTM layer is wrapped in Magenta's AttentionCellWrapper ({len(attention)} attention "
                     f"variables, e.g. {attention[0]}; attention_rnn and drum_kit use it), and the events_rnn "
                     "serving class has no attention")
    cell = "basic_lstm_cell" if v.count(_RNN_CELL, "basic_lstm_cell") else "lstm_cell"
    layers = v.count(_RNN_CELL, cell)
    if not layers or not v.has("fully_connected/weights"):
        raise refuse("it lacks rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel or fully_connected/weights")
    inputs, _ = v.cell_shapes(_RNN_CELL.format(0, cell))
    classes = v.shape("fully_connected/biases")[0]
    encoding = MELODY_RANGES.get(classes) if inputs == classes else None
    if encoding is None:
        raise refuse(_encoding_mismatch(inputs, classes))
    weights: dict[str, np.ndarray] = {}
    sizes = []
    for k in range(layers):
        kernel, recurrent, bias = v.lstm(_RNN_CELL.format(k, cell))
        weights.update({f"lstm_{k}/kernel": kernel, f"lstm_{k}/recurrent_kernel": recurrent, f"lstm_{k}/bias": bias})
        sizes.append(recurrent.shape[0])
    weights["output/kernel"], weights["output/bias"] = v.dense("fully_connected/", "weights", "biases")
    low, high, magenta_config = encoding
    config = {
        "name": name, "model_class": "events_rnn", "kind": "melody", "tools": ["continue"], "default": False,
        "help": f"Magenta MelodyRNN ({magenta_config} layout), imported: one-hot melody events, pitches {low}-{high}.",
        "config": hint,
        "hparams": {"layers": layers, "units": sizes[0] if len(set(sizes)) == 1 else sizes, "lookback": 0,
                    "counter_bits": 0},
        "converter": "melody", "converter_args": {"min_pitch": low, "max_pitch": high, "steps_per_quarter": 4},
    }
    return Imported(config, weights, f"MelodyRNN {magenta_config} ({layers} x {sizes} LSTM, {classes} classes)")


def _encoding_mismatch(inputs: int, classes: int) -> str:
    """Why an events RNN's input encoding is not one ours reproduces, by its sizes."""
    if classes >= 3 and inputs == 3 * (classes - 2) + 7:
        return (f"its input is Magenta's lookback encoding ({inputs} features, {classes} classes as lookback_rnn): "
                "note_seq's LookbackEventSequenceEncoderDecoder feeds the events *after* the 1- and 2-bar lookback "
                "positions, counts the *next* step and adds 2 'repeat' labels, while our events_rnn features look "
                "back at the events themselves, count the current step and predict plain events")
    if inputs == 74 and classes == 40:
        return ("its input is attention_rnn's key-aware encoding (74 features: key histograms, direction, bar "
                "flags), which our events_rnn features do not compute")
    if classes == 512 and 512 < inputs <= 512 + 12:
        return (f"its input is drum_kit's 512-way one-hot plus {inputs - 512} binary counters of the *next* step "
                "(note_seq LookbackEventSequenceEncoderDecoder); our drums features add the 9 class bits and "
                "count the *current* step, so the counters cannot be converted")
    known = ", ".join(f"{n}/{n} ({cfg})" for n, (_, _, cfg) in MELODY_RANGES.items())
    return f"input size {inputs} with {classes} classes matches no encoding the bridge reproduces (known: {known})"


# --- MusicVAE / GrooVAE --------------------------------------------------------------------------

def _music_vae(v: _Variables, hint: str, name: str) -> Imported:
    refuse = lambda why: ImportRefused(f"{v.label}: cannot serve this MusicVAE exactly: {why}")  # noqa: E731
    split = v.matching(r"core_decoder_\d")
    if split:
        raise refuse(f"its decoder is split into one decoder per track ({split[0]} ...: a trio / multi-track "
                     "model), which our serving classes do not run")
    hierarchical = v.matching(r"hierarchical_level_|core_decoder")
    if hierarchical:
        raise refuse(f"it is hierarchical ({hierarchical[0]} ...): a conductor LSTM and/or per-bar encoder, while "
                     "our music_vae and groovae serving classes run one flat encoder and decoder")
    for pattern, what in (("nade", "a NADE (multi-label) decoder"),
                          ("control_preprocessing", "a control (chord/key) pre-processing LSTM")):
        found = v.matching(pattern)
        if found:
            raise refuse(f"it has {what} ({found[0]} ...), which our serving classes do not run")
    enc_layers = v.count(_ENC_CELL, "fw")
    if enc_layers != 1:
        raise refuse(f"its bidirectional encoder has {enc_layers} layers; our serving classes run exactly one")
    dec_layers = v.count(_DEC_CELL)
    if not dec_layers or not v.has("decoder/output_projection/kernel"):
        raise refuse("no decoder/multi_rnn_cell/cell_0/lstm_cell or decoder/output_projection variables")
    z_size = v.shape("encoder/mu/bias")[0]
    enc_in, enc_units = v.cell_shapes(_ENC_CELL.format(0, "fw"))
    out = v.shape("decoder/output_projection/bias")[0]
    dec_in, _ = v.cell_shapes(_DEC_CELL.format(0))
    if enc_in == out == 3 * GROOVE_DRUMS:
        kind = "groove"
    elif enc_in == out == VAE_MELODY_CLASSES:
        kind = "melody"
    elif out == 512 and enc_in == GROOVE_DRUMS + 1:
        raise refuse("it is a drums MusicVAE (cat-drums_*): its decoder feeds back the sampled 512-way one-hot, "
                     "ours feeds back the 10-wide drum roll, and a 512-row kernel cannot be folded into 10 rows")
    else:
        raise refuse(f"encoder input {enc_in} and decoder output {out} match neither the 90-class melody "
                     "converter (pitches 21-108) nor GrooVAE's 27-wide hits/velocities/offsets")
    if dec_in != out + z_size:
        raise refuse(f"each decoder step reads {dec_in} inputs, not output {out} + z {z_size}: it is conditioned "
                     f"on {dec_in - out - z_size} control inputs (chords, key or hits), which our serving classes do not feed")
    enc = {d: v.lstm(_ENC_CELL.format(0, d)) for d in ("fw", "bw")}
    dec = [v.lstm(_DEC_CELL.format(k)) for k in range(dec_layers)]
    dec_units = [recurrent.shape[0] for _, recurrent, _ in dec]
    swap = lstm_layout.swap_state_halves(dec_units)
    init_kernel, init_bias = v.dense("decoder/z_to_initial_state/")
    mu, sigma = v.dense("encoder/mu/"), v.dense("encoder/sigma/")
    out_kernel, out_bias = v.dense("decoder/output_projection/")
    init = (init_kernel[:, swap], init_bias[swap])
    bars = _bars(hint)
    if kind == "groove":
        return _groovae(refuse, hint, name, enc, dec, mu, sigma, init, (out_kernel, out_bias), bars)
    if bars is None:
        raise refuse(f"cannot tell its window length from {hint!r}; pass --config with the Magenta config name, "
                     "e.g. cat-mel_2bar_small")
    weights = _named({"encoder/fw": enc["fw"], "encoder/bw": enc["bw"],
                      **{f"decoder/lstm_{k}": cell for k, cell in enumerate(dec)}},
                     {"encoder/mu": mu, "encoder/sigma": sigma, "decoder/z_to_state": init,
                      "decoder/out": (out_kernel, out_bias)})
    low, high = VAE_MELODY
    config = {
        "name": name, "model_class": "music_vae", "kind": "melody", "tools": ["generate", "interpolate"],
        "default": False, "config": hint,
        "help": f"Magenta MusicVAE {hint}, imported: {bars}-bar 4/4 melody, pitches {low}-{high}.",
        "hparams": {"bars": bars, "steps_per_bar": STEPS_PER_BAR, "min_pitch": low, "max_pitch": high,
                    "enc_units": enc_units, "dec_units": dec_units, "z_size": z_size},
        "converter": "vae_melody", "converter_args": {"bars": bars, "min_pitch": low, "max_pitch": high},
    }
    return Imported(config, weights, f"MusicVAE flat melody (bi[{enc_units}] -> {dec_units}, z {z_size}, {bars} bars)")


def _groovae(refuse, hint: str, name: str, enc: dict, dec: list, mu, sigma, init, out, bars: int | None) -> Imported:
    """GrooVAE: Magenta's encoder reads all 27 channels; humanize zeroes velocities and offsets,
    tapify keeps one channel, so only the rows our encoder input feeds are kept."""
    text = hint.lower()
    if bars != 2 or not ("humanize" in text or "tap" in text) or "add_" in text:
        raise refuse(f"{hint!r} is not groovae_2bar_humanize or groovae_2bar_tap_fixed_velocity: the groovae serving "
                     "class runs 2-bar humanize or tap models only (pass --config with one of those names if the "
                     "checkpoint is one)")
    mode = "humanize" if "humanize" in text else "tap"
    n = GROOVE_DRUMS
    rows = np.arange(n) if mode == "humanize" else np.array([GROOVE_TAP_CHANNEL, n + GROOVE_TAP_CHANNEL,
                                                             2 * n + GROOVE_TAP_CHANNEL])
    encoder = {}
    for direction, (kernel, recurrent, bias) in enc.items():
        kernel = kernel[rows].copy()
        if mode == "tap" and "fixed_velocity" in text:
            kernel[1] = 0.0  # the model never saw a tap velocity: Magenta's input held 0 there
        encoder[f"enc_{direction}"] = (kernel, recurrent, bias)
    weights = _named({**encoder, **{f"dec_{k}": cell for k, cell in enumerate(dec)}},
                     {"mu": mu, "sigma": sigma, "dec_init": init, "out": out})
    units = [cell[1].shape[0] for cell in dec]
    config = {
        "name": name, "model_class": "groovae", "kind": "drums",
        "tools": ["groove"] if mode == "humanize" else ["drumify"], "default": False, "config": hint,
        "help": f"Magenta GrooVAE {hint}, imported ({mode}).",
        "hparams": {"mode": mode, "enc_units": enc["fw"][1].shape[0], "dec_units": units,
                    "z_size": mu[1].shape[0]},
        "converter": "groove", "converter_args": {},
    }
    return Imported(config, weights, f"GrooVAE {mode} (bi[{config['hparams']['enc_units']}] -> {units}, "
                                     f"z {config['hparams']['z_size']})")


def _bars(hint: str) -> int | None:
    match = re.search(r"(\d+)bar", hint)
    return int(match.group(1)) if match else None


def _named(lstms: dict[str, tuple], denses: dict[str, tuple]) -> dict[str, np.ndarray]:
    weights = {}
    for prefix, (kernel, recurrent, bias) in lstms.items():
        weights.update({f"{prefix}/kernel": kernel, f"{prefix}/recurrent_kernel": recurrent, f"{prefix}/bias": bias})
    for prefix, (kernel, bias) in denses.items():
        weights.update({f"{prefix}/kernel": kernel, f"{prefix}/bias": bias})
    return {k: np.ascontiguousarray(w, np.float32) for k, w in weights.items()}


# --- the command ---------------------------------------------------------------------------------

def import_checkpoint(path: str | Path, output: str | Path, name: str | None = None,
                      config_name: str | None = None) -> tuple[Path, Imported]:
    """Read, convert and write a bundle; the serving class is built once to prove it loads."""
    from bridge.bundle import load_bundle
    from bridge.models import MODEL_CLASSES

    output = Path(output)
    imported = convert(read_checkpoint(path), config_name, name or output.name)
    path_out = save_bundle(output, imported.config, imported.weights, model_card(imported))
    bundle = load_bundle(path_out)
    MODEL_CLASSES[bundle.config["model_class"]].from_bundle(bundle)
    return path_out, imported


def model_card(imported: Imported) -> str:
    """Where the weights came from and what the conversion did; no eval (none was run)."""
    cfg, src = imported.config, imported.config["source"]
    notes = ["LSTM kernels split into kernel / recurrent_kernel, gates reordered from TF's (i, j, f, o) to "
             "(i, f, c, o), TF's run-time forget bias (+1.0) folded into the bias."]
    if cfg["model_class"] == "events_rnn":
        notes.append("Input one-hot and output classes are Magenta's melody encoding (0 no-event, 1 note-off, pitches).")
    else:
        notes.append("Decoder initial-state columns reordered from TF's (c, h) per layer to (h, c).")
    if cfg["model_class"] == "groovae":
        notes.append("Encoder rows for channels Magenta's converter always fed zeros in this mode were dropped. "
                     "Sampling feeds velocities and offsets back masked by the sampled hits (as the training "
                     "targets were), where Magenta's sampler fed them back unmasked.")
    lines = [f"# {cfg['name']}", "", cfg["help"], "",
             "Imported from a Magenta checkpoint with `magenta-bridge import`; not trained by this project.", "",
             f"- source: `{src['path']}`",
             f"- Magenta generator id: {src['generator_id'] or '(none: not a .mag)'}; config: {src['config']}",
             f"- description: {src['description'] or '(none)'}",
             f"- layout: {imported.layout}",
             f"- model class: `{cfg['model_class']}`, serves: {', '.join(cfg['tools'])} ({cfg['kind']})",
             f"- hparams: `{json.dumps(cfg['hparams'], sort_keys=True)}`",
             f"- converter: `{cfg['converter']}` `{json.dumps(cfg['converter_args'], sort_keys=True)}`", "",
             "## Conversion", "", *(f"- {n}" for n in notes), "",
             "## Data, license and evaluation", "",
             "Those of the original checkpoint: see where it was published. No evaluation was run at import; "
             "the conversion is tested for logit parity with the TensorFlow graph (tests/test_interop_import.py).", ""]
    return "\n".join(lines)
