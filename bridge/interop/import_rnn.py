"""Magenta MelodyRNN / DrumsRNN checkpoints (rnn/..., fully_connected/...) as bundles.

basic_rnn / mono_rnn (one-hot in, one-hot out) run on our own events_rnn class. The layouts
trained on note_seq's other encoders run on magenta_rnn, which rebuilds those inputs:

  lookback_rnn   121 inputs (38 classes), 40 labels (two "repeat N bars ago")
  attention_rnn  74 key-aware inputs, 40 labels, attention over the last 40 outputs
  drum_kit       512 one-hot + 6 binary counters, 512 labels, attention over 32

The attention wrapper sits around the whole LSTM stack (older Magenta, magenta.js:
rnn/attention_cell_wrapper/multi_rnn_cell/...) or around the first layer only (newer Magenta:
rnn/multi_rnn_cell/cell_0/attention_cell_wrapper/...). Its window length is not stored in the
checkpoint, so it comes from the config name (attention_rnn 40, drum_kit 32).
"""
from __future__ import annotations

import numpy as np

from bridge.interop.variables import Imported, ImportRefused, Variables

# Magenta's one-hot melody encodings, by class count: (min pitch, max pitch inclusive, config).
MELODY_RANGES = {38: (48, 83, "basic_rnn"), 130: (0, 127, "mono_rnn")}
KEY_MELODY = (74, 40)  # attention_rnn's KeyMelodyEncoderDecoder(48, 84): inputs, labels
DRUM_CLASSES = 512
ATTENTION_LENGTHS = {"attention_rnn": 40, "drum_kit": 32}
_STACK = {"stack": "rnn/attention_cell_wrapper/multi_rnn_cell/cell_{}/{}/", "first": "rnn/multi_rnn_cell/cell_{}/{}/",
          None: "rnn/multi_rnn_cell/cell_{}/{}/"}
_WRAPPER = {"stack": "rnn/attention_cell_wrapper/", "first": "rnn/multi_rnn_cell/cell_0/attention_cell_wrapper/"}


def events_rnn(v: Variables, hint: str, name: str) -> Imported:
    refuse = lambda why: ImportRefused(f"{v.label}: cannot serve this events RNN exactly: {why}. Supported: "  # noqa: E731
                                       "MelodyRNN basic_rnn, mono_rnn, lookback_rnn, attention_rnn; DrumsRNN drum_kit")
    layout = ("stack" if v.has(_WRAPPER["stack"] + "kernel") or v.has(_WRAPPER["stack"] + "weights")
              else "first" if v.matching("^" + _WRAPPER["first"]) else None)
    cells = [_cell_prefix(v, layout, k) for k in range(_count_layers(v, layout))]
    if not cells or not v.has("fully_connected/weights"):
        raise refuse("it lacks rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel or fully_connected/weights")
    inputs, _ = v.cell_shapes(cells[0])
    classes = v.shape("fully_connected/biases")[0]
    spec = _encoder(inputs, classes)
    if spec is None:
        raise refuse(_encoding_mismatch(inputs, classes))
    weights: dict[str, np.ndarray] = {}
    sizes = []
    for k, prefix in enumerate(cells):
        kernel, recurrent, bias = v.lstm(prefix)
        weights.update({f"lstm_{k}/kernel": kernel, f"lstm_{k}/recurrent_kernel": recurrent, f"lstm_{k}/bias": bias})
        sizes.append(recurrent.shape[0])
    weights["output/kernel"], weights["output/bias"] = v.dense("fully_connected/", "weights", "biases")
    kind, low, high, magenta_config, inputs_spec = spec
    hparams = {"layers": len(cells), "units": sizes[0] if len(set(sizes)) == 1 else sizes}
    if inputs_spec is None and layout is None:  # one-hot in and out: our own events_rnn runs it
        model_class, hparams = "events_rnn", {**hparams, "lookback": 0, "counter_bits": 0}
    elif inputs_spec is None:
        raise refuse("a one-hot model with an attention wrapper is no Magenta config this bridge knows")
    else:
        model_class, hparams = "magenta_rnn", {**hparams, "inputs": inputs_spec, "attention": None}
    if layout is not None:
        length = next((n for key, n in ATTENTION_LENGTHS.items() if key in hint), None)
        if length is None:
            raise refuse(f"its attention window length is not stored in the checkpoint and {hint!r} names no known "
                         "config; pass --config attention_rnn or --config drum_kit")
        weights.update(_attention(v, _WRAPPER[layout]))
        hparams["attention"] = {"layout": layout, "length": length}
    where = f"{layout} attention ({hparams['attention']['length']} steps)" if layout else "no attention"
    config = {
        "name": name, "model_class": model_class, "kind": kind, "tools": ["continue"], "default": False,
        "help": f"Magenta {'DrumsRNN' if kind == 'drums' else 'MelodyRNN'} ({magenta_config} layout, {where}), imported.",
        "config": hint, "hparams": hparams,
        "converter": kind, "converter_args": ({"min_pitch": low, "max_pitch": high, "steps_per_quarter": 4}
                                              if kind == "melody" else {"steps_per_quarter": 4}),
    }
    return Imported(config, weights, f"{'DrumsRNN' if kind == 'drums' else 'MelodyRNN'} {magenta_config} "
                                     f"({len(cells)} x {sizes} LSTM, {classes} classes, {where})")


def _count_layers(v: Variables, layout: str | None) -> int:
    n = 0
    while _cell_prefix(v, layout, n):
        n += 1
    return n


def _cell_prefix(v: Variables, layout: str | None, k: int) -> str | None:
    """Where layer k's LSTM lives: under the wrapper for the wrapped layer(s), with either cell name."""
    template = _STACK[layout]
    if layout == "first" and k == 0:
        template = _WRAPPER["first"] + "{1}/"
    for cell in ("basic_lstm_cell", "lstm_cell"):
        prefix = template.format(k, cell)
        if v.has(prefix + "kernel") or v.has(prefix + "weights"):
            return prefix
    return None


def _encoder(inputs: int, classes: int) -> tuple[str, int, int, str, dict | None] | None:
    """(kind, min pitch, max pitch, Magenta config, magenta_rnn inputs spec or None for one-hot)."""
    if inputs == classes and classes in MELODY_RANGES:
        low, high, cfg = MELODY_RANGES[classes]
        return "melody", low, high, cfg, None
    events = classes - 2
    if events in MELODY_RANGES and inputs == 3 * events + 7:
        low, high, _ = MELODY_RANGES[events]
        return "melody", low, high, "lookback_rnn", {"type": "lookback", "num_events": events,
                                                     "lookback_distances": [16, 32], "counter_bits": 5}
    if (inputs, classes) == KEY_MELODY:
        return "melody", 48, 83, "attention_rnn", {"type": "key_melody", "min_pitch": 48, "max_pitch": 83}
    if classes == DRUM_CLASSES and DRUM_CLASSES < inputs <= DRUM_CLASSES + 12:
        return "drums", 0, 0, "drum_kit", {"type": "lookback", "num_events": DRUM_CLASSES, "lookback_distances": [],
                                           "counter_bits": inputs - DRUM_CLASSES}
    return None


def _attention(v: Variables, prefix: str) -> dict[str, np.ndarray]:
    """tf.contrib AttentionCellWrapper's variables, under either TF naming (kernel/bias or
    weights/biases) and either output-projection scope name."""
    def dense(scope: str) -> tuple[np.ndarray, np.ndarray]:
        names = ("kernel", "bias") if v.has(scope + "kernel") else ("weights", "biases")
        return v.dense(scope, *names)

    out_scope = next((prefix + s + "/" for s in ("attn_output_projection", "attention_output_projection")
                      if v.matching("^" + prefix + s + "/")), prefix + "attn_output_projection/")
    input_kernel, input_bias = dense(prefix)
    query_kernel, query_bias = dense(prefix + "attention/")
    output_kernel, output_bias = dense(out_scope)
    attn_w = v.take(prefix + "attention/attn_w")
    return {"attention/input_kernel": input_kernel, "attention/input_bias": input_bias,
            "attention/attn_w": attn_w.reshape(attn_w.shape[-2:]), "attention/attn_v": v.take(prefix + "attention/attn_v"),
            "attention/query_kernel": query_kernel, "attention/query_bias": query_bias,
            "attention/output_kernel": output_kernel, "attention/output_bias": output_bias}


def _encoding_mismatch(inputs: int, classes: int) -> str:
    known = ", ".join(f"{n}/{n} ({cfg})" for n, (_, _, cfg) in MELODY_RANGES.items())
    return (f"input size {inputs} with {classes} classes matches no encoding the bridge reproduces (known: {known}, "
            f"121/40 lookback_rnn, 74/40 attention_rnn, 512+counters/512 drum_kit)")
