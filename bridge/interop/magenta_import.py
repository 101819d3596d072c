"""Magenta checkpoints -> bundles our NumPy serving classes run with the same logits.

The architecture is read from variable names and shapes (and the generator id or config name
where there is one); weights are converted with bridge.interop.lstm_layout. A layout is
imported only where our serving class computes exactly what Magenta's graph computed:

  MelodyRNN basic_rnn / mono_rnn  -> events_rnn (one-hot melody in, no lookback, no counters)
  MelodyRNN lookback_rnn / attention_rnn, DrumsRNN drum_kit (with or without attention, the
    wrapper around the whole stack or the first layer) -> magenta_rnn (note_seq's encoders)
  MusicVAE cat-mel_*, cat-drums_*, hierdec-mel_* / hierdec-drums_* (stacked bidirectional
    encoders, a conductor over one embedding per bar) -> music_vae (melody 90 classes,
    pitches 21-108; drums: 10-wide roll in, 512-way one-hot out and fed back)
  GrooVAE humanize / tap          -> groovae (encoder rows Magenta always fed zeros are dropped)

Everything else is refused with the reason: hierarchical (per-bar) encoders, autoregressive or
multi-level conductors, trio / multi-track, NADE and control-conditioned models, and any
variable the layout cannot place (named in the message).
"""
from __future__ import annotations

import json
from pathlib import Path

from bridge.bundle import save_bundle
from bridge.interop.import_rnn import events_rnn
from bridge.interop.import_vae import music_vae
from bridge.interop.tf_checkpoint import Checkpoint, read_checkpoint
from bridge.interop.variables import Imported, ImportRefused, Variables

__all__ = ["ImportRefused", "Imported", "convert", "import_checkpoint", "model_card"]


def convert(ckpt: Checkpoint, config_name: str | None = None, name: str = "imported") -> Imported:
    """The bundle config and weights for a checkpoint, or ImportRefused saying why not."""
    hint = config_name or ckpt.hint
    v = Variables(ckpt.variables, f"{Path(ckpt.source).name} ({hint})")
    if not ckpt.variables:
        raise ImportRefused(f"{v.label}: the checkpoint holds no weight variables")
    if v.has("fully_connected/weights") or v.matching(r"^rnn/"):
        imported = events_rnn(v, hint, name)
    elif v.matching(r"^(encoder|decoder|core_decoder)") and v.has("encoder/mu/kernel"):
        imported = music_vae(v, hint, name)
    else:
        shown = ", ".join(sorted(ckpt.variables)[:8])
        raise ImportRefused(f"{v.label}: neither a MelodyRNN/DrumsRNN (rnn/..., fully_connected/...) nor a MusicVAE "
                            f"(encoder/..., decoder/...) layout; variables: {shown}")
    v.check_all_placed(imported.layout)
    source = {"path": str(ckpt.source), "generator_id": ckpt.generator_id, "description": ckpt.description,
              "config": hint}
    return Imported({**imported.config, "source": source}, imported.weights, imported.layout)


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
    elif cfg["model_class"] == "magenta_rnn":
        notes.append("Inputs and labels are rebuilt as note_seq built them for this config (next-step counters, "
                     "lookback and repeat labels, key histograms); attention weights are kept as TF stored them, the "
                     "1x1 conv kernel attn_w as a matrix. attention_rnn's primer transposition to C is not done.")
    else:
        notes.append("Decoder (and conductor) initial-state columns reordered from TF's (c, h) per layer to (h, c).")
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
