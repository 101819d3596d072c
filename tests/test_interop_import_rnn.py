"""`magenta-bridge import` for lookback_rnn, attention_rnn and drum_kit: checkpoints written by
TF's own v1 Saver under Magenta's names, imported as magenta_rnn bundles whose logits equal
the TF graph's (max abs diff <= 1e-4) on inputs built by note_seq's encoders, and which serve
the continue tool."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from note_seq import encoder_decoder as ned  # noqa: E402
from note_seq import melody_encoder_decoder as nm  # noqa: E402

from bridge.bundle import load_bundle  # noqa: E402
from bridge.cli import main  # noqa: E402
from bridge.clip import Clip, Note  # noqa: E402
from bridge.models.magenta_rnn import MagentaRNN, magenta_encoder  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from interop_tf_graphs import write_mag  # noqa: E402
from interop_tf_rnn_graphs import MagentaRNNGraph  # noqa: E402

TOL = 1e-4
STEPS = 40

# case: (generator id, inputs, classes, units, layout, attention length, TF names, output scope, saved as)
CASES = {
    "lookback_rnn": ("lookback_rnn", 121, 40, (16, 12), None, 0, ("kernel", "bias"), "", "mag"),
    "attention_rnn first layer": ("attention_rnn", 74, 40, (16, 16), "first", 40, ("kernel", "bias"),
                                  "attn_output_projection", "mag"),
    "drum_kit first layer": ("drum_kit", 518, 512, (12, 12, 12), "first", 32, ("kernel", "bias"),
                             "attn_output_projection", "mag"),
    "drum_kit whole stack, old names": ("drum_kit", 518, 512, (12, 12), "stack", 32, ("weights", "biases"),
                                        "attention_output_projection", "folder"),
    "drum_kit without attention": ("drum_kit", 518, 512, (12,), None, 0, ("kernel", "bias"), "", "folder"),
}


def _import(tmp_path, case: str):
    gen_id, inputs, classes, units, layout, length, names, scope, saved_as = CASES[case]
    graph = MagentaRNNGraph(inputs, classes, units, STEPS, layout, length, names, scope, seed=inputs + len(units))
    if saved_as == "mag":
        source = write_mag(tmp_path / f"{gen_id}.mag", graph.save(tmp_path / "v1" / "model.ckpt", v1=True), gen_id)
    else:
        source = graph.save(tmp_path / "ckpt" / f"{gen_id}.ckpt", v1=False).parent
    assert main(["import", str(source), "-o", str(tmp_path / "bundle")]) == 0
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.config["model_class"] == "magenta_rnn"
    return graph, MagentaRNN.from_bundle(bundle), bundle


def _events(case: str, rng: np.random.Generator, batch: int = 3) -> np.ndarray:
    """Event indices with repeats and long notes, so lookback and key inputs are exercised."""
    if CASES[case][2] == 512:
        pool = np.array([0, 0, 1, 5, 4, 1 | 4, 257])
    else:
        pool = np.array([0, 0, 0, 1, 2 + 12, 2 + 14, 2 + 16, 2 + 19])
    bar = rng.choice(pool, (batch, 16))
    events = np.concatenate([bar, bar, rng.choice(pool, (batch, STEPS - 32))], axis=1)
    events[:, 0] = pool[-1]
    return events


@pytest.mark.parametrize("case", sorted(CASES))
def test_imported_logits_match_the_tf_graph(tmp_path, case):
    graph, model, bundle = _import(tmp_path, case)
    events = _events(case, np.random.default_rng(len(case)))
    encoder = magenta_encoder(bundle.config["hparams"]["inputs"])
    x = np.stack([encoder.inputs(row.tolist()) for row in events])
    reference = graph.run(graph.logits, {graph.x: x})
    assert np.abs(model.logits(events) - reference).max() <= TOL
    if CASES[case][6] == ("weights", "biases"):
        assert "stack attention (32 steps)" in bundle.config["help"]


def test_lookback_inputs_are_note_seqs_own():
    """The inputs fed in the parity test are the ones note_seq builds for lookback_rnn."""
    onehot = nm.MelodyOneHotEncoding(48, 84)
    theirs = ned.LookbackEventSequenceEncoderDecoder(onehot)
    events = _events("lookback_rnn", np.random.default_rng(0), 1)[0]
    melody = [e - 2 + 48 if e >= 2 else e - 2 for e in events.tolist()]
    ours = magenta_encoder({"type": "lookback", "num_events": 38, "lookback_distances": [16, 32], "counter_bits": 5})
    for p in range(len(melody)):
        np.testing.assert_array_equal(ours.input_at(events.tolist(), p), theirs.events_to_input(melody, p))


class _Store:
    def __init__(self, model):
        self.model = model

    def require(self, tool, kind, name=None, time_signature=None):
        return self.model


@pytest.mark.parametrize("case", ["lookback_rnn", "attention_rnn first layer", "drum_kit whole stack, old names"])
def test_imported_models_serve_continue(tmp_path, case):
    _, model, _ = _import(tmp_path, case)
    if model.kind == "melody":
        clip = Clip([Note(60 + 2 * i, i * 0.5, 0.5, 90) for i in range(8)], length=4.0)
    else:
        clip = Clip([Note(36 if i % 4 == 0 else 42, i * 0.25, 0.25, 100) for i in range(16)], length=4.0)
    params = {"type": model.kind, "variations": 3, "length": 2, "temperature": 1.0, "seed": 5}
    run = lambda: TOOLS["continue"]([clip], params, ToolContext(_Store(model), lambda f, m: None))  # noqa: E731
    out = run()
    assert len(out) == 3 and out == run()  # same seed, same notes
    for result in out:
        new = [n for n in result.notes if n.start >= clip.length]
        assert result.length == pytest.approx(clip.length + 8.0) and all(n.end <= result.length + 1e-9 for n in new)
        if model.kind == "melody":
            assert all(48 <= n.pitch <= 83 for n in new)
    assert any(n.start >= clip.length for r in out for n in r.notes)


def test_attention_without_a_known_config_asks_for_one(tmp_path, capsys):
    graph = MagentaRNNGraph(518, 512, (8,), 4, "first", 32, seed=1)
    folder = graph.save(tmp_path / "ckpt" / "my_drums.ckpt", v1=False).parent
    assert main(["import", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert "pass --config attention_rnn or --config drum_kit" in capsys.readouterr().err
    assert main(["import", str(folder), "-o", str(tmp_path / "out"), "--config", "drum_kit"]) == 0


def test_nll_scores_magentas_labels(tmp_path):
    """A repeat of the bar before is labelled 'repeat 1 bar ago' (class 38), as Magenta trained it."""
    _, model, _ = _import(tmp_path, "lookback_rnn")
    events = _events("lookback_rnn", np.random.default_rng(3), 2)
    logits = model.logits(events[:, :-1])
    labels = np.array([[model.inputs.label_at(row.tolist(), t) for t in range(1, len(row))] for row in events])
    assert (labels[:, 16:31] >= 38).all()  # the second bar repeats the first
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    expected = -np.take_along_axis(logp, labels[..., None], -1).mean()
    assert model.nll(events)[0] == pytest.approx(expected, rel=1e-5)
