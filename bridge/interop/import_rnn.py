"""Magenta MelodyRNN / DrumsRNN checkpoints (rnn/multi_rnn_cell/..., fully_connected/...) as bundles."""
from __future__ import annotations

import numpy as np

from bridge.interop.variables import Imported, ImportRefused, Variables

# Magenta's one-hot melody encodings, by class count: (min pitch, max pitch inclusive, config).
MELODY_RANGES = {38: (48, 83, "basic_rnn"), 130: (0, 127, "mono_rnn")}
_RNN_CELL = "rnn/multi_rnn_cell/cell_{}/{}/"


def events_rnn(v: Variables, hint: str, name: str) -> Imported:
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
