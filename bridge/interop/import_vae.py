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


def music_vae(v: Variables, hint: str, name: str) -> Imported:
    refuse = lambda why: ImportRefused(f"{v.label}: cannot serve this MusicVAE exactly: {why}")  # noqa: E731
    split = v.matching(r"core_decoder_\d")
    if split:
        raise refuse(f"its decoder is split into one decoder per track ({split[0]} ...: a trio / multi-track "
                     "model), which our serving classes do not run")
    for pattern, why in ((r"^encoder/hierarchical_level_", "a hierarchical (per-bar) encoder"),
                         (r"^decoder/hierarchical_level_[1-9]", "more than one conductor level")):
        found = v.matching(pattern)
        if found:
            raise refuse(f"it has {why} ({found[0]} ...), while our music_vae serving class runs a stacked "
                         "bidirectional encoder and at most one conductor")
    hierarchical = bool(v.matching(r"^decoder/hierarchical_level_0/"))
    dec = "core_decoder/decoder/" if hierarchical else "decoder/"
    dec_cell = dec + "multi_rnn_cell/cell_{}/lstm_cell/"
    for pattern, what in (("nade", "a NADE (multi-label) decoder"),
                          ("control_preprocessing", "a control (chord/key) pre-processing LSTM")):
        found = v.matching(pattern)
        if found:
            raise refuse(f"it has {what} ({found[0]} ...), which our serving classes do not run")
    enc_layers = v.count(_ENC_CELL, "fw")
    if not enc_layers:
        raise refuse("no encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell variables")
    dec_layers = v.count(dec_cell)
    if not dec_layers or not v.has(dec + "output_projection/kernel"):
        raise refuse(f"no {dec}multi_rnn_cell/cell_0/lstm_cell or {dec}output_projection variables")
    z_size = v.shape("encoder/mu/bias")[0]
    enc_in, enc_units = v.cell_shapes(_ENC_CELL.format(0, "fw"))
    out = v.shape(dec + "output_projection/bias")[0]
    dec_in, _ = v.cell_shapes(dec_cell.format(0))
    conductor = _conductor(v, refuse, z_size) if hierarchical else None
    embedding = conductor[0][-1][1].shape[0] if conductor else z_size
    if enc_in == out == 3 * GROOVE_DRUMS:
        kind = "groove"
    elif enc_in == out == VAE_MELODY_CLASSES:
        kind = "melody"
    elif out == DRUM_CLASSES and enc_in == GROOVE_DRUMS + 1:
        kind = "drums"  # DrumsConverter(roll_input=True): 9-class roll + "nothing hit" in, 512-way one-hot out
    else:
        raise refuse(f"encoder input {enc_in} and decoder output {out} match neither the 90-class melody "
                     "converter (pitches 21-108) nor GrooVAE's 27-wide hits/velocities/offsets")
    if dec_in != out + embedding:
        raise refuse(f"each decoder step reads {dec_in} inputs, not output {out} + z {embedding}: it is conditioned "
                     f"on {dec_in - out - embedding} control inputs (chords, key or hits), which our serving classes do not feed")
    enc = [{d: v.lstm(_ENC_CELL.format(k, d)) for d in ("fw", "bw")} for k in range(enc_layers)]
    if len({cell["fw"][1].shape[0] for cell in enc}) != 1:
        raise refuse("its encoder layers differ in size, which our music_vae serving class does not run")
    cells = [v.lstm(dec_cell.format(k)) for k in range(dec_layers)]
    dec_units = [recurrent.shape[0] for _, recurrent, _ in cells]
    init = _initial_state(v.dense(dec + "z_to_initial_state/"), dec_units)
    mu, sigma = v.dense("encoder/mu/"), v.dense("encoder/sigma/")
    out_kernel, out_bias = v.dense(dec + "output_projection/")
    bars = _bars(hint)
    if kind == "groove":
        if enc_layers != 1 or hierarchical:
            raise refuse(f"a GrooVAE with {enc_layers} encoder layers; the groovae serving class runs one")
        return _groovae(refuse, hint, name, enc[0], cells, mu, sigma, init, (out_kernel, out_bias), bars)
    if bars is None:
        raise refuse(f"cannot tell its window length from {hint!r}; pass --config with the Magenta config name, "
                     "e.g. cat-mel_2bar_small")
    suffix = lambda k: f"_{k}" if k else ""  # noqa: E731
    encoder = {f"encoder/{d}{suffix(k)}": layer[d] for k, layer in enumerate(enc) for d in ("fw", "bw")}
    lstms = {**encoder, **{f"decoder/lstm_{k}": cell for k, cell in enumerate(cells)}}
    denses = {"encoder/mu": mu, "encoder/sigma": sigma, "decoder/z_to_state": init, "decoder/out": (out_kernel, out_bias)}
    hparams = {"bars": bars, "steps_per_bar": STEPS_PER_BAR, "enc_units": enc_units, "enc_layers": enc_layers,
               "dec_units": dec_units, "z_size": z_size}
    if conductor:  # Magenta's hierdec configs conduct one embedding per bar
        lstms.update({f"decoder/conductor_{k}": cell for k, cell in enumerate(conductor[0])})
        denses["decoder/conductor_init"] = conductor[1]
        hparams.update(conductor_units=[cell[1].shape[0] for cell in conductor[0]], segments=bars)
    weights = named(lstms, denses)
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
    shape = f"hierarchical {kind} ({layers}bi[{enc_units}] -> conductor {hparams['conductor_units']} -> " if conductor \
        else f"flat {kind} ({layers}bi[{enc_units}] -> "
    return Imported(config, weights, f"MusicVAE {shape}{dec_units}, z {z_size}, {bars} bars)")


def _initial_state(dense: tuple[np.ndarray, np.ndarray], units: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """tanh(dense(.)) to initial states, columns reordered from TF's (c, h) per layer to our (h, c)."""
    swap = lstm_layout.swap_state_halves(units)
    return dense[0][:, swap], dense[1][swap]


def _conductor(v: Variables, refuse, z_size: int) -> tuple[list, tuple[np.ndarray, np.ndarray]]:
    """The conductor's LSTM layers and initial-state projection (decoder/hierarchical_level_0/...).

    Magenta's hierdec configs disable the conductor's autoregression: it reads a constant zero
    of width 1 at every step. Any other input width means it read back the core decoder's
    states, which our serving class does not do."""
    cell = "decoder/hierarchical_level_0/cell_{}/lstm_cell/"
    layers = v.count(cell)
    if not layers:
        raise refuse("it has decoder/hierarchical_level_0 variables but no conductor cell "
                     "decoder/hierarchical_level_0/cell_0/lstm_cell")
    inputs, _ = v.cell_shapes(cell.format(0))
    if inputs != 1:
        raise refuse(f"its conductor reads {inputs} inputs per step (autoregressive), not Magenta hierdec's constant "
                     "zero, which our serving class feeds")
    cells = [v.lstm(cell.format(k)) for k in range(layers)]
    init = _initial_state(v.dense("decoder/hierarchical_level_0/initial_state/"), [c[1].shape[0] for c in cells])
    if init[0].shape[0] != z_size:
        raise refuse(f"its conductor's initial state reads {init[0].shape[0]} values, not z ({z_size})")
    return cells, init


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
