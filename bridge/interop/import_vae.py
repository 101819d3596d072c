"""Magenta MusicVAE / GrooVAE checkpoints (encoder/..., decoder/...) as bundles."""
from __future__ import annotations

import re

import numpy as np

from bridge.interop import lstm_layout
from bridge.interop.variables import Imported, ImportRefused, Variables, named

VAE_MELODY = (21, 108)  # MusicVAE's OneHotMelodyConverter: the 88 piano keys + 2 = 90 classes
VAE_MELODY_CLASSES = VAE_MELODY[1] - VAE_MELODY[0] + 3
GROOVE_DRUMS = 9
DRUM_CLASSES = 512
GROOVE_TAP_CHANNEL = 3  # Magenta's tapify writes every onset to the open hi-hat channel
STEPS_PER_BAR = 16

_ENC_CELL = "encoder/cell_{}/bidirectional_rnn/{}/multi_rnn_cell/cell_0/lstm_cell/"
_DEC_CELL = "decoder/multi_rnn_cell/cell_{}/lstm_cell/"


def music_vae(v: Variables, hint: str, name: str) -> Imported:
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
    if not enc_layers:
        raise refuse("no encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell variables")
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
    elif out == DRUM_CLASSES and enc_in == GROOVE_DRUMS + 1:
        kind = "drums"  # DrumsConverter(roll_input=True): 9-class roll + "nothing hit" in, 512-way one-hot out
    else:
        raise refuse(f"encoder input {enc_in} and decoder output {out} match neither the 90-class melody "
                     "converter (pitches 21-108) nor GrooVAE's 27-wide hits/velocities/offsets")
    if dec_in != out + z_size:
        raise refuse(f"each decoder step reads {dec_in} inputs, not output {out} + z {z_size}: it is conditioned "
                     f"on {dec_in - out - z_size} control inputs (chords, key or hits), which our serving classes do not feed")
    enc = [{d: v.lstm(_ENC_CELL.format(k, d)) for d in ("fw", "bw")} for k in range(enc_layers)]
    if len({cell["fw"][1].shape[0] for cell in enc}) != 1:
        raise refuse("its encoder layers differ in size, which our music_vae serving class does not run")
    dec = [v.lstm(_DEC_CELL.format(k)) for k in range(dec_layers)]
    dec_units = [recurrent.shape[0] for _, recurrent, _ in dec]
    swap = lstm_layout.swap_state_halves(dec_units)
    init_kernel, init_bias = v.dense("decoder/z_to_initial_state/")
    mu, sigma = v.dense("encoder/mu/"), v.dense("encoder/sigma/")
    out_kernel, out_bias = v.dense("decoder/output_projection/")
    init = (init_kernel[:, swap], init_bias[swap])
    bars = _bars(hint)
    if kind == "groove":
        if enc_layers != 1:
            raise refuse(f"a GrooVAE with {enc_layers} encoder layers; the groovae serving class runs one")
        return _groovae(refuse, hint, name, enc[0], dec, mu, sigma, init, (out_kernel, out_bias), bars)
    if bars is None:
        raise refuse(f"cannot tell its window length from {hint!r}; pass --config with the Magenta config name, "
                     "e.g. cat-mel_2bar_small")
    suffix = lambda k: f"_{k}" if k else ""  # noqa: E731
    encoder = {f"encoder/{d}{suffix(k)}": layer[d] for k, layer in enumerate(enc) for d in ("fw", "bw")}
    weights = named({**encoder, **{f"decoder/lstm_{k}": cell for k, cell in enumerate(dec)}},
                    {"encoder/mu": mu, "encoder/sigma": sigma, "decoder/z_to_state": init,
                     "decoder/out": (out_kernel, out_bias)})
    hparams = {"bars": bars, "steps_per_bar": STEPS_PER_BAR, "enc_units": enc_units, "enc_layers": enc_layers,
               "dec_units": dec_units, "z_size": z_size}
    if kind == "melody":
        low, high = VAE_MELODY
        hparams.update(min_pitch=low, max_pitch=high)
        what, args = f"melody, pitches {low}-{high}", {"bars": bars, "min_pitch": low, "max_pitch": high}
    else:
        hparams["dec_feedback"] = "one_hot"  # the decoder reads back the 512-way one-hot it wrote
        what, args = "drums, 9 classes", {"bars": bars}
    config = {
        "name": name, "model_class": "music_vae", "kind": kind, "tools": ["generate", "interpolate"],
        "default": False, "config": hint, "help": f"Magenta MusicVAE {hint}, imported: {bars}-bar 4/4 {what}.",
        "hparams": hparams, "converter": f"vae_{kind}", "converter_args": args,
    }
    layers = f"{enc_layers} x " if enc_layers > 1 else ""
    return Imported(config, weights, f"MusicVAE flat {kind} ({layers}bi[{enc_units}] -> {dec_units}, z {z_size}, "
                                     f"{bars} bars)")


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
    weights = named({**encoder, **{f"dec_{k}": cell for k, cell in enumerate(dec)}},
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
