"""A finished run -> a bundle folder the NumPy server loads (see bridge.bundle).

The bundle holds the best checkpoint's weights under the serving class's names, a config.json
with everything the serving class needs, a MODEL_CARD.md, and `eval_slice.npz`: EVAL_SLICE
eval examples spread evenly over the split, exactly as the pipeline cached them, with the
exported model's metrics on them in config.json and on the card, so a test can recompute
them from the shipped files alone.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from bridge.bundle import atomic_write, save_bundle
from bridge.data import pipeline
from bridge.train import checkpoint
from bridge.train.trainer import configure_tensorflow, load_run

EVAL_SLICE = 32
LICENSES = {  # data folder name -> how its license reads on a model card
    "pop909": "POP909 (Wang et al., ISMIR 2020), MIT License",
    "groove": "Groove MIDI Dataset (Gillick et al., ICML 2019), Creative Commons Attribution 4.0 (CC BY 4.0)",
}


def _license(source: str) -> str:
    name = Path(source).name.lower()
    return next((text for key, text in LICENSES.items() if key in name),
                "your own data: check that its license allows training and sharing a model")


def export(run_dir: str | Path, output: str | Path, name: str | None = None) -> Path:
    run_dir, output = Path(run_dir), Path(output)
    if not (run_dir / "run.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no run.json)")
    if not (run_dir / "result.json").is_file():
        raise ValueError(f"{run_dir}: training has not finished (no result.json); run the same `train` "
                         "command again to finish it, or with a smaller --steps to stop where it is")
    run, config = load_run(run_dir)
    result = json.loads((run_dir / "result.json").read_text())
    keras, _ = configure_tensorflow(1, run["seed"])
    from bridge.train.families import family

    fam = family(config.model_class)
    prepare = getattr(fam, "prepare_batch", lambda batch, config: batch)
    eval_arrays = pipeline.load(run["cache"], "eval")
    total = len(next(iter(eval_arrays.values())))
    pick = np.unique(np.linspace(0, total - 1, min(EVAL_SLICE, total)).astype(int))  # spread over all eval files
    sample = {k: v[pick] for k, v in eval_arrays.items()}
    model = fam.build(config)
    model(prepare(sample, config))
    ckpt = run_dir / "checkpoints" / "best.npz"
    values, _, meta = checkpoint.load(ckpt if ckpt.is_file() else checkpoint.latest(run_dir / "checkpoints"))
    for variable, value in zip(model.weights, values):
        variable.assign(value)
    slice_metrics = {k: float(v) for k, v in model.test_step(prepare(sample, config)).items()}
    manifest = pipeline.manifest(run["cache"])
    name = name or output.name
    bundle_config = {
        "name": name, "model_class": config.model_class, "kind": config.kind, "tools": list(config.tools),
        "default": True, "help": config.help, "config": config.name, "hparams": config.hparams,
        "converter": config.converter, "converter_args": config.converter_args,
        "data": {"source": Path(run["data"]).name, "split": manifest["split_rule"], "license": _license(run["data"]),
                 "files": manifest["splits"], "skipped": manifest["files"]["skipped"]},
        "training": {"command": run.get("command"), "seed": run["seed"], "steps": result["steps"],
                     "checkpoint_step": meta["step"], "stopped": result["stopped"], "wall_time_s": result["wall_time_s"]},
        "eval": {**result["eval"], "examples": result["eval_examples"], "baselines": result.get("baselines", {}),
                 "slice": {"file": "eval_slice.npz", "examples": len(pick), **slice_metrics}},
    }
    path = save_bundle(output, bundle_config, fam.export_weights(model, config), model_card(bundle_config))
    buffer = io.BytesIO()
    np.savez(buffer, **sample)
    atomic_write(path / "eval_slice.npz", buffer.getvalue())
    return path


def model_card(cfg: dict) -> str:
    ev, tr, data = cfg["eval"], cfg["training"], cfg["data"]
    rows = [("loss (NLL, nats per step)", ev["loss"]), ("perplexity", ev["perplexity"])]
    rows += [(k.replace("_", " "), v) for k, v in ev.items()
             if k not in ("loss", "perplexity", "examples", "baselines", "slice")]
    lines = [f"# {cfg['name']}", "", cfg.get("help", ""), "",
             f"- model class: `{cfg['model_class']}` (config `{cfg['config']}`), serves: {', '.join(cfg['tools'])} "
             f"({cfg['kind']})",
             f"- hparams: `{json.dumps(cfg['hparams'], sort_keys=True)}`",
             f"- converter: `{cfg['converter']}` `{json.dumps(cfg['converter_args'], sort_keys=True)}`", "",
             "## Data", "",
             f"- source: {data['source']}; license: {data['license']}",
             f"- split: {data['split']}; " + "; ".join(
                 f"{split}: {counts.get('files', 0)} files, {counts.get('examples', 0)} examples"
                 for split, counts in data["files"].items()),
             f"- skipped: {data['skipped'] or 'none'}", "",
             "## Training", "",
             f"- command: `{tr['command']}`" if tr["command"] else "- command: (called from Python)",
             f"- seed {tr['seed']}; {tr['steps']} steps ({tr['stopped']}); exported checkpoint: step "
             f"{tr['checkpoint_step']} (best eval loss); wall time {tr['wall_time_s'] / 60:.1f} min", "",
             f"## Eval (held-out split, {ev['examples']} examples, teacher-forced)", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in rows]
    if ev["baselines"]:
        lines += ["", "Baselines fit on the same train examples, scored on the same eval steps:", "",
                  "| baseline metric | value |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {v:.4f} |" for k, v in ev["baselines"].items()]
        base = ev["baselines"].get("ngram4_loss")
        if base:
            change = 100 * (1 - ev["loss"] / base)
            lines += ["", f"The model's eval NLL is {abs(change):.1f}% {'lower' if change >= 0 else 'higher'} "
                      "than the 4-gram's."]
    sl = ev["slice"]
    lines += ["", f"`{sl['file']}` ships {sl['examples']} eval examples spread evenly over the eval split; on them "
              "the exported model scores "
              f"loss {sl['loss']:.4f}, accuracy {sl.get('accuracy', float('nan')):.4f}.", ""]
    return "\n".join(lines)
