"""The generic trainer: any config, any family (see bridge.train.families for the contract).

A run folder holds everything about one training run:
    run.json             config, hparams, seed, data and cache folders, working folder, the
                         command line of every invocation (`commands`, first to last)
    checkpoints/         ckpt-<step>.npz (last two) and best.npz (best eval loss so far)
    tb/train, tb/eval    TensorBoard logs: the family's metrics (loss, accuracy, KL...), learning
                         rate, perplexity where the family's loss is a per-step NLL, piano-roll
                         images of samples
    result.json          written when training ends: steps, why it stopped ("max_steps",
                         "--steps" or "early_stopping"), the command that finished it, wall
                         time, eval and baselines
Running the same command again resumes from the newest checkpoint (model, optimizer, step),
so a killed run loses at most `checkpoint_every` steps. Batches are a function of (seed,
step) (bridge.train.batches), so a resumed run sees the same data it would have seen without
the kill, whichever cache layout it reads. A run can train on several devices or machines with
tf.distribute (bridge.train.distribute); only the chief writes the run folder.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.bundle import atomic_write
from bridge.data import pipeline
from bridge.models.configs import CONFIGS, ModelConfig
from bridge.train import checkpoint, distribute
from bridge.train.batches import Batches, replica_slice

DEFAULTS = {"batch_size": 64, "learning_rate": 1e-3, "clip_norm": 0.0, "max_steps": 1000, "eval_every": 250,
            "checkpoint_every": 250, "image_every": 0, "early_stop_patience": 0, "log_every": 25,
            "eval_examples": 2048, "lr_decay_start": 0, "lr_decay_rate": 1.0, "min_learning_rate": 1e-5,
            "shuffle_shards": 16}
# Hparams that only say how long a run goes: a finished run can be extended by raising them.
EXTENDABLE = ("max_steps",)


def learning_rate_at(hp: dict[str, Any], step: int) -> float:
    """Magenta's MusicVAE decay, (lr - min) * rate**t + min, with t counted from
    `lr_decay_start`: a run trained at a constant rate can be annealed from a checkpoint, and
    the same hparams trained from scratch follow the same schedule. Rate 1.0 keeps lr constant."""
    if hp["lr_decay_rate"] == 1.0 or step < hp["lr_decay_start"]:
        return hp["learning_rate"]
    floor = hp["min_learning_rate"]
    return (hp["learning_rate"] - floor) * hp["lr_decay_rate"] ** (step - hp["lr_decay_start"]) + floor


def parse_hparams(text: str | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """`k=v,k=v` -> values typed like the defaults; lists are written `a:b:c`."""
    out: dict[str, Any] = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in defaults:
            known = ", ".join(sorted(defaults))
            raise ValueError(f"bad hparam {item!r}: expected key=value with key one of {known}")
        default = defaults[key]
        if isinstance(default, bool):
            out[key] = value.strip().lower() in ("1", "true", "yes", "on")
        elif isinstance(default, (list, tuple)):
            kind = type(default[0]) if default else int
            out[key] = [kind(v) for v in value.split(":")]
        else:
            out[key] = type(default)(value)
    return out


def configure_tensorflow(threads: int, seed: int):
    """Set thread counts before TensorFlow starts, seed everything, make ops deterministic."""
    import keras
    import tensorflow as tf

    threading = tf.config.threading
    for get, set_ in ((threading.get_intra_op_parallelism_threads, threading.set_intra_op_parallelism_threads),
                      (threading.get_inter_op_parallelism_threads, threading.set_inter_op_parallelism_threads)):
        if get() != threads:
            try:
                set_(threads)
            except RuntimeError:  # TensorFlow already ran in this process (tests, notebooks): keep its threads
                pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras, tf


def evaluate(step, prepare, chunks, perplexity: bool = False) -> dict[str, float]:
    """Example-weighted means of a test step's metrics over chunks of examples: the trainer's
    eval and the card's test numbers are the same computation."""
    sums: dict[str, float] = {}
    count = 0
    for chunk in chunks:
        n = len(next(iter(chunk.values())))
        for key, value in step(prepare(chunk)).items():
            sums[key] = sums.get(key, 0.0) + float(value) * n
        count += n
    out = {k: v / count for k, v in sums.items()}
    if perplexity:
        out["perplexity"] = math.exp(min(out["loss"], 50.0))
    return out


class Trainer:
    def __init__(self, config: ModelConfig, run_dir: Path, cache: Path, seed: int, threads: int,
                 strategy: str = "auto") -> None:
        from bridge.train.families import family, has_perplexity

        self.config, self.run_dir, self.cache, self.seed = config, run_dir, cache, seed
        self.hp = config.hparams
        self.keras, self.tf = configure_tensorflow(threads, seed)
        strategy = distribute.resolve(strategy, self.tf)
        self.strategy = distribute.make(strategy, self.tf)
        self.strategy_name, self.distributed = strategy, strategy != "none"
        self.replicas = self.strategy.num_replicas_in_sync
        self.chief = distribute.is_chief()
        if self.hp["batch_size"] % self.replicas:
            raise ValueError(f"batch_size {self.hp['batch_size']} does not divide into {self.replicas} replicas")
        self.family = family(config.model_class)
        self.perplexity = has_perplexity(self.family)
        self.prepare = getattr(self.family, "prepare_batch", lambda batch, config: batch)
        self.train = pipeline.open_split(cache, "train")
        self.eval = pipeline.open_split(cache, "eval")
        self.batches = Batches(self.train, self.hp["batch_size"], seed, self.hp["shuffle_shards"])
        clip = self.hp["clip_norm"] or None
        with self.strategy.scope():
            self.model = self.family.build(config)
            self.model(self.prepare(self.batches(0), config))
            # Several replicas: the train step clips the summed gradient itself (see MetricsModel).
            self.optimizer = self.keras.optimizers.Adam(self.hp["learning_rate"],
                                                        clipnorm=None if self.replicas > 1 else clip)
            self.model.replica_clip_norm = (clip or 0.0) if self.replicas > 1 else 0.0
            self.model.compile(optimizer=self.optimizer)
            self.optimizer.build(self.model.trainable_variables)
        self.train_fn = self.tf.function(self.model.train_step) if not self.distributed else self._distributed_step()
        self.eval_fn = self.tf.function(self.model.test_step)

    def _distributed_step(self):
        """One step over every replica: each takes its slice of the global batch; the metrics
        are averaged over replicas (equal slices: the global batch's means)."""
        tf, strategy = self.tf, self.strategy

        @tf.function
        def step(batch):
            metrics = strategy.run(self.model.train_step, args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in metrics.items()}

        def run(batch):
            return step(strategy.experimental_distribute_values_from_function(
                lambda ctx: replica_slice(batch, ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync)))
        return run

    def agree_on_step(self, step: int) -> None:
        """Every worker must start from the same checkpoint: a worker that cannot see the
        chief's run folder would train other weights, so compare the steps all workers restored
        (sums of step and step squared over replicas equal R*s and R*s*s only if all are s)."""
        tf, strategy = self.tf, self.strategy

        @tf.function
        def summed(value):
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(value)), axis=None)
        total = summed(tf.constant([step, step * step], tf.float64)).numpy()
        if total[0] != self.replicas * step or total[1] != self.replicas * step * step:
            raise RuntimeError(f"this worker resumed at step {step} but others did not: every worker must see the "
                               f"chief's checkpoints in {self.run_dir} (a shared filesystem)")

    # --- state ---------------------------------------------------------------------------
    def save(self, name: str, meta: dict) -> None:
        if not self.chief:
            return
        checkpoint.save(self.run_dir / "checkpoints" / name, [v.numpy() for v in self.model.weights],
                        [v.numpy() for v in self.optimizer.variables], meta)

    def restore(self, path: Path) -> dict:
        model_vars, optimizer_vars, meta = checkpoint.load(path)
        for variables, values in ((self.model.weights, model_vars), (self.optimizer.variables, optimizer_vars)):
            if len(variables) != len(values) or any(tuple(v.shape) != a.shape for v, a in zip(variables, values)):
                raise ValueError(f"checkpoint {path} does not fit this model (was the config changed?)")
            for variable, value in zip(variables, values):
                variable.assign(value)
        return meta

    def weights_fingerprint(self) -> str:
        return checkpoint.fingerprint([v.numpy() for v in self.model.weights])

    # --- loop ----------------------------------------------------------------------------
    def evaluate(self, limit: int | None) -> dict[str, float]:
        return evaluate(self.eval_fn, lambda chunk: self.prepare(chunk, self.config),
                        self.eval.chunks(self.hp["batch_size"], limit), self.perplexity)

    def images(self, writer, step: int) -> None:
        sampler = getattr(self.family, "sample_rolls", None)
        if sampler is None:
            return
        rolls = sampler(self.model, self.config, 4, self.seed + step)
        image = np.stack([np.asarray(r, np.float32).T[::-1, :, None] for r in rolls])  # pitch up, time right
        with writer.as_default():
            self.tf.summary.image("samples", image, step=step, max_outputs=len(rolls))

    def run(self, max_steps: int, log=print, limit: str = "max_steps", command: str | None = None) -> dict:
        """Train to `max_steps` and finish. `limit` says what set max_steps ("max_steps" or
        "--steps") and is the stop reason unless early stopping ends the run first; `command`
        is the invocation that finishes it, both kept in result.json for the model card."""
        tf, hp = self.tf, self.hp
        ckpt_dir = self.run_dir / "checkpoints"
        meta = {"step": 0, "best_eval_loss": None, "best_step": None, "bad_evals": 0, "wall_time_s": 0.0}
        latest = checkpoint.latest(ckpt_dir)
        if latest is not None:
            meta = self.restore(latest)
            log(f"resumed from step {meta['step']} ({latest.name}, weights {self.weights_fingerprint()})")
        if self.distributed:
            log(f"training on {self.replicas} replicas (strategy {self.strategy_name}, "
                f"{'chief' if self.chief else 'worker'})")
            if distribute.task_count(distribute.tf_config()) > 1:
                self.agree_on_step(meta["step"])
        writers = {s: tf.summary.create_file_writer(str(self.run_dir / "tb" / s)) if self.chief
                   else tf.summary.create_noop_writer() for s in ("train", "eval")}
        session_start, step, earlier = time.monotonic(), meta["step"], meta["wall_time_s"]
        sums: dict[str, float] = {}
        tick, early = time.monotonic(), False

        def elapsed() -> float:  # training time over every session of this run
            return earlier + time.monotonic() - session_start

        lr = None  # set from the schedule, not from the checkpoint's optimizer state
        while step < max_steps:
            wanted = learning_rate_at(hp, step)
            if wanted != lr:
                self.optimizer.learning_rate = lr = wanted
            metrics = self.train_fn(self.prepare(self.batches(step), self.config))
            step += 1
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            if step % hp["log_every"] == 0 or step == max_steps:
                n = hp["log_every"] if step % hp["log_every"] == 0 else step % hp["log_every"]
                means = {k: v / n for k, v in sums.items()}
                rate = n / max(time.monotonic() - tick, 1e-9)
                with writers["train"].as_default():
                    for key, value in means.items():
                        tf.summary.scalar(key, value, step=step)
                    if self.perplexity:
                        tf.summary.scalar("perplexity", math.exp(min(means["loss"], 50.0)), step=step)
                    tf.summary.scalar("learning_rate", float(self.optimizer.learning_rate.numpy()), step=step)
                    tf.summary.scalar("steps_per_second", rate, step=step)
                log(f"step {step}  " + "  ".join(f"{k} {v:.4f}" for k, v in means.items()) + f"  {rate:.2f} steps/s")
                sums, tick = {}, time.monotonic()
            if hp["image_every"] and step % hp["image_every"] == 0 and self.chief:
                self.images(writers["train"], step)
            if step % hp["eval_every"] == 0 or step == max_steps:
                result = self.evaluate(hp["eval_examples"])
                with writers["eval"].as_default():
                    for key, value in result.items():
                        tf.summary.scalar(key, value, step=step)
                log(f"eval {step}  " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
                if meta["best_eval_loss"] is None or result["loss"] < meta["best_eval_loss"]:
                    meta.update(best_eval_loss=result["loss"], best_step=step, bad_evals=0)
                    self.save("best.npz", {**meta, "step": step, "wall_time_s": elapsed()})
                else:
                    meta["bad_evals"] += 1
                if hp["early_stop_patience"] and meta["bad_evals"] >= hp["early_stop_patience"]:
                    early = True
            if step % hp["checkpoint_every"] == 0 or step == max_steps or early:
                meta.update(step=step, wall_time_s=elapsed())
                self.save(f"ckpt-{step}.npz", meta)
                if self.chief:
                    checkpoint.prune(ckpt_dir)
            if early:
                log(f"early stopping at step {step}: eval loss has not improved for {meta['bad_evals']} evals")
                break
        for writer in writers.values():
            writer.flush()
        meta.update(step=step, wall_time_s=elapsed())
        if not self.chief:  # the chief scores the run and writes result.json
            return {"steps": step, "stopped": "early_stopping" if early else limit, "chief": False}
        return self.finish(meta, "early_stopping" if early else limit, log, command)

    def finish(self, meta: dict, stopped: str, log, command: str | None = None) -> dict:
        """Score the best checkpoint on the whole eval split, and the family's baselines."""
        best = self.run_dir / "checkpoints" / "best.npz"
        if best.is_file():
            self.restore(best)
        result = {"steps": meta["step"], "best_step": meta["best_step"], "stopped": stopped, "command": command,
                  "wall_time_s": round(meta["wall_time_s"], 1), "eval": self.evaluate(None),
                  "eval_examples": self.eval.size}
        baselines = getattr(self.family, "baselines", None)
        if baselines is not None:
            result["baselines"] = baselines(self.config, self.train.parts(), self.eval.arrays())
        atomic_write(self.run_dir / "result.json", (json.dumps(result, indent=2) + "\n").encode())
        log("result " + json.dumps(result))
        return result


def load_run(run_dir: Path) -> tuple[dict, ModelConfig]:
    """run.json and the config (with the run's hparams) it names."""
    run = json.loads((run_dir / "run.json").read_text())
    base = CONFIGS[run["config"]]
    return run, ModelConfig(base.name, base.model_class, base.kind, base.tools, base.converter,
                            run["converter_args"], run["hparams"], base.help)


def train(config_name: str, data: str | Path | list[str | Path], run_dir: str | Path, hparams: str | None = None,
          steps: int | None = None, seed: int = 0, threads: int = 1, cache_root: str | Path = "cache",
          quiet: bool = False, command: str | None = None, strategy: str = "auto") -> dict:
    """Train (or resume) a run; return result.json's contents. `command` is recorded for the
    model card; `strategy` is one of bridge.train.distribute.NAMES."""
    if config_name not in CONFIGS:
        raise ValueError(f"unknown config {config_name!r}; known: {', '.join(sorted(CONFIGS))}")
    run_dir = Path(run_dir)
    base = CONFIGS[config_name]
    base = replace(base, hparams={**DEFAULTS, **base.hparams})
    config = base.with_hparams(parse_hparams(hparams, base.hparams))
    hp = config.hparams
    max_steps = steps if steps is not None else hp["max_steps"]
    run = {"config": config.name, "model_class": config.model_class, "converter": config.converter,
           "converter_args": config.converter_args, "hparams": hp, "seed": seed,
           "data": [str(p.resolve()) for p in pipeline.sources_of(data)], "cwd": str(Path.cwd())}
    commands: list[str] = []
    if (run_dir / "run.json").is_file():
        previous = json.loads((run_dir / "run.json").read_text())
        # A run started before an hparam existed ran with what is now its default.
        previous["hparams"] = {**base.hparams, **previous["hparams"]}
        for key in EXTENDABLE:
            previous["hparams"][key] = hp[key]
        for key in ("config", "converter_args", "hparams", "seed"):
            if previous[key] != run[key]:
                raise ValueError(f"{run_dir} holds a run with another {key} ({previous[key]!r}); "
                                 "use a new --run-dir or the same settings to resume")
        commands = previous.get("commands") or [c for c in [previous.get("command")] if c]
    if command and command not in commands[-1:]:  # a resume with the same command adds nothing
        commands.append(command)
    run["command"], run["commands"] = (commands or [None])[0], commands
    cache = pipeline.build(config, data, cache_root, quiet=quiet)
    run["cache"] = str(cache.resolve())
    run["max_steps"] = max_steps
    if not quiet:
        print(pipeline.summary(pipeline.manifest(cache)), file=sys.stderr)
    if distribute.is_chief():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "run.json", (json.dumps(run, indent=2) + "\n").encode())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    trainer = Trainer(config, run_dir, cache, seed, threads, strategy)
    return trainer.run(max_steps, log=(lambda *a: None) if quiet else (lambda msg: print(msg, flush=True)),
                       limit="--steps" if steps is not None else "max_steps", command=command)
