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
import os
import shlex
from pathlib import Path

import numpy as np

from bridge.bundle import atomic_write, save_bundle
from bridge.data import pipeline
from bridge.train import checkpoint
from bridge.train.trainer import configure_tensorflow, evaluate, load_run

EVAL_SLICE = 32
STOPS = {  # result.json's stop reason -> how the card says it
    "max_steps": "reached the config's max_steps",
    "--steps": "stopped by --steps",
    "early_stopping": "early stopping: eval loss stopped improving",
}
LICENSES = {  # data folder name -> how its license reads on a model card
    "pop909": "POP909 (Wang et al., ISMIR 2020), MIT License",
    "groove": "Groove MIDI Dataset (Gillick et al., ICML 2019), Creative Commons Attribution 4.0 (CC BY 4.0)",
    "folk": "Essen Folksong Collection (Schaffrath et al.) as distributed with the music21 corpus (BSD-3 "
            "package), for research use",
    "chorales": "J. S. Bach's four-part chorales as encoded in the music21 corpus (BSD-3 package)",
}


MIN_METER_WINDOWS = 50  # training windows a meter needs before a bundle says it takes that meter


def trained_meters(manifest: dict) -> list[str]:
    """The meters a meter-aware model saw enough of: the converter counts "windows in <meter>"
    (also for windows made from another meter, "windows in 3/4 (4/4 without beat 4)")."""
    counts: dict[str, int] = {}
    for key, n in manifest["stats"].items():
        if key.startswith("windows in "):
            meter = key[len("windows in "):].split(" ")[0]
            counts[meter] = counts.get(meter, 0) + n
    found = [m for m, n in counts.items() if n >= MIN_METER_WINDOWS]
    return sorted(found, key=lambda m: (int(m.split("/")[1]), int(m.split("/")[0])))


def _license(source: str) -> str:
    name = Path(source).name.lower()
    return next((text for key, text in LICENSES.items() if key in name),
                "your own data: check that its license allows training and sharing a model")


def _relative(path: str, base: Path) -> str:
    """An absolute path as seen from `base`, the folder the command ran in (so a card shows
    `../shared/data/groove`, not a path that exists on one machine); others as given."""
    if not os.path.isabs(path):
        return path
    try:
        return os.path.relpath(path, base)
    except ValueError:  # on another drive (Windows): there is no relative form
        return path


def _portable(command: str, base: Path) -> str:
    """A recorded command line with its absolute paths (`/x` or `--opt=/x`) made relative."""
    def token(arg: str) -> str:
        if arg.startswith("-") and "=" in arg:
            option, _, value = arg.partition("=")
            return f"{option}={_relative(value, base)}"
        return _relative(arg, base)

    return shlex.join(token(arg) for arg in shlex.split(command))


def _commands(run: dict, result: dict) -> list[str]:
    """The invocations that produced result.json, first to last: run.json lists every one, and
    result.json names the one that finished (a later killed invocation did not produce it)."""
    history = run.get("commands") or [c for c in [run.get("command")] if c]
    last = result.get("command")
    if last in history:
        return history[:len(history) - history[::-1].index(last)]
    return [*history, last] if last else history


def _stopped(run: dict, result: dict) -> str:
    """Why training stopped. The earlier trainer wrote "max_steps" even when --steps set the
    limit; run.json's max_steps (the limit of the last invocation) tells those runs apart."""
    default = run["hparams"]["max_steps"]
    if result["stopped"] == "max_steps" and run.get("max_steps", default) != default:
        return "--steps"
    return result["stopped"]


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
    from bridge.train.families import family, has_perplexity, loss_label

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
    test_arrays = pipeline.test_split(config, run["cache"])
    test = {"examples": 0}
    if test_arrays:
        test = {**evaluate(model.test_step, lambda chunk: prepare(chunk, config),
                           pipeline.open_split(run["cache"], "test").chunks(config.hparams["batch_size"]),
                           has_perplexity(fam)),
                "examples": len(next(iter(test_arrays.values())))}
    manifest = pipeline.manifest(run["cache"])
    name = name or output.name
    base = Path(run.get("cwd") or Path.cwd())  # runs from before run.json kept it were exported where they ran
    commands = [_portable(c, base) for c in _commands(run, result)]
    # Runs from before HAS_PERPLEXITY carry exp(loss) for every family; keep it only where it means something.
    evaluation = {k: v for k, v in result["eval"].items() if k != "perplexity" or has_perplexity(fam)}
    bundle_config = {
        "name": name, "model_class": config.model_class, "kind": config.kind, "tools": list(config.tools),
        "default": True, "help": config.help, "config": config.name, "hparams": config.hparams,
        **({"meters": trained_meters(manifest)} if config.hparams.get("meter") else {}),
        "converter": config.converter, "converter_args": config.converter_args,
        "data": {"sources": [{"source": Path(d).name, "path": _relative(d, base), "license": _license(d)}
                             for d in pipeline.sources_of(run["data"])],
                 "split": manifest["split_rule"], "files": manifest["splits"], "skipped": manifest["files"]["skipped"]},
        "training": {"command": commands[-1] if commands else None, "commands": commands, "seed": run["seed"],
                     "steps": result["steps"], "checkpoint_step": meta["step"], "stopped": _stopped(run, result),
                     "wall_time_s": result["wall_time_s"], "notes": result.get("notes", [])},
        "eval": {**evaluation, "examples": result["eval_examples"], "baselines": result.get("baselines", {}),
                 "slice": {"file": "eval_slice.npz", "examples": len(pick), **slice_metrics}},
        "test": test,
    }
    card = model_card(bundle_config, loss_label(fam))
    path = save_bundle(output, bundle_config, fam.export_weights(model, config), card)
    buffer = io.BytesIO()
    np.savez(buffer, **sample)
    atomic_write(path / "eval_slice.npz", buffer.getvalue())
    return path


def _command_lines(commands: list[str]) -> list[str]:
    """One command as is; a resumed run as "trained with A; ...; finished with B"."""
    if not commands:
        return ["- command: (called from Python)"]
    if len(commands) == 1:
        return [f"- command: `{commands[0]}`"]
    middle = [f"resumed with `{c}`" for c in commands[1:-1]]
    return ["- commands: " + "; ".join([f"trained with `{commands[0]}`", *middle, f"finished with `{commands[-1]}`"])]


def model_card(cfg: dict, loss_label: str) -> str:
    """The card for a bundle config; `loss_label` is the family's name for its loss."""
    ev, tr, data, test = cfg["eval"], cfg["training"], cfg["data"], cfg.get("test", {})
    keys = ["loss"] + [k for k in sorted(ev, key=lambda k: k != "perplexity")  # perplexity next to its loss
                       if k not in ("loss", "examples", "baselines", "slice")]
    rows = [(loss_label if k == "loss" else k.replace("_", " "), ev[k], test.get(k)) for k in keys]
    lines = [f"# {cfg['name']}", "", cfg.get("help", ""), "",
             f"- model class: `{cfg['model_class']}` (config `{cfg['config']}`), serves: {', '.join(cfg['tools'])} "
             f"({cfg['kind']})",
             f"- hparams: `{json.dumps(cfg['hparams'], sort_keys=True)}`",
             f"- converter: `{cfg['converter']}` `{json.dumps(cfg['converter_args'], sort_keys=True)}`",
             f"- meters: {', '.join(cfg.get('meters') or ['4/4'])}"
             + (" (each with at least 50 training windows; also meters with the same bar and beats on their grid)"
                if cfg.get("meters") else " (4/4 only, and meters with its bar length such as 2/2)"), "",
             "## Data", "",
             *(f"- source: {d['source']} (`{d['path']}`); license: {d['license']}" for d in data["sources"]),
             f"- split: {data['split']}; " + "; ".join(
                 f"{split}: {counts.get('files', 0)} files, {counts.get('examples', 0)} examples"
                 for split, counts in data["files"].items()),
             f"- skipped: {data['skipped'] or 'none'}", "",
             "## Training", "",
             *_command_lines(tr["commands"]),
             f"- seed {tr['seed']}; {tr['steps']} steps ({STOPS.get(tr['stopped'], tr['stopped'])}); exported "
             f"checkpoint: step {tr['checkpoint_step']} (best eval loss); wall time {tr['wall_time_s'] / 60:.1f} min",
             *(f"- note: {note}" for note in tr["notes"]), "",
             f"## Eval (teacher-forced): validation ({ev['examples']} examples, chose the checkpoint) and "
             f"test ({test.get('examples', 0)} examples of files nothing else read)", "",
             "| metric | validation | test |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | " + (f"{t:.4f}" if t is not None else "-") + " |" for k, v, t in rows]
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
    scores = [("loss", sl["loss"])] + [(k.replace("_", " "), v) for k, v in sl.items() if k.endswith("accuracy")]
    lines += ["", f"`{sl['file']}` ships {sl['examples']} eval examples spread evenly over the eval split; on them "
              "the exported model scores " + ", ".join(f"{k} {v:.4f}" for k, v in scores) + ".", ""]
    return "\n".join(lines)
