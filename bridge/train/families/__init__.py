"""Model families: the Keras half of each `model_class`, found by name when training.

The contract every family and converter follows, so that the one pipeline, trainer and
exporter serve every model (MelodyRNN/DrumsRNN, GrooVAE, MusicVAE):

Config (`bridge.models.configs.ModelConfig`)
    `model_class` names both the serving class (`bridge.models.MODEL_CLASSES[model_class]`,
    NumPy only) and this package's module `bridge.train.families.<model_class>`; `converter`
    names a converter in `bridge.data.converters.CONVERTERS`, built with `converter_args`;
    `hparams` holds every training and architecture number (`--hparams k=v` overrides).
    The trainer reads these hparams, with defaults in `bridge.train.trainer.DEFAULTS`:
    batch_size, learning_rate, clip_norm (Adam's per-tensor clipnorm; 0 = off), max_steps
    (default for --steps), log_every, eval_every, eval_examples (eval batches during
    training; the final eval uses the whole split), checkpoint_every, image_every (0 = no
    images), early_stop_patience (evals without a better eval loss before stopping; 0 = off),
    lr_decay_start, lr_decay_rate and min_learning_rate (rate 1.0 = constant; see
    `learning_rate_at`), shuffle_shards (shards of a sharded cache shuffled together; see
    bridge.train.batches). Raising max_steps is the one change a resumed run accepts.
    batch_size is the global batch: under tf.distribute each replica takes an equal slice.

Converter (`bridge/data/converters/<name>.py`, registered with `@register("<name>")`)
    A class built as `Converter(**converter_args)` with
      `examples(score, meta) -> list[dict[str, np.ndarray]]`
    where `score` is `bridge.midi_io.read_midi_tracks(path)` (notes in beats from ticks,
    tempo and meter maps) and `meta` is a dict: "path" (relative to the data folder),
    "split" ("train" or "eval"), "seed" (an int fixed per file, for augmentation that must
    not change between runs). Every example of a converter has the same keys and, per key,
    the same shape and dtype; these are what the cache stores (`.npz`, no pickle) and what
    a batch holds. A converter that skips a file or part of one returns fewer examples and
    counts why in `self.stats` (a `collections.Counter` of reason -> count; keys may also
    name length buckets, e.g. "segment 16-32 bars"), which the pipeline's summary table
    prints.

Family (`bridge/train/families/<model_class>.py`)
    build(config) -> keras.Model
        A keras.Model subclass whose `train_step(batch)` / `test_step(batch)` take the dict
        batch (converter keys, stacked, after `prepare_batch`) and return a metrics dict that
        includes "loss" (other keys, e.g. "accuracy", "kl", are logged as they come). The
        model is built by calling it once on a batch; the trainer then compiles it with its
        Adam optimizer, so `train_step` uses `self.optimizer`.
    export_weights(model, config) -> dict[str, np.ndarray]
        Exactly the arrays, under the names, that the serving class reads from weights.npz.
    prepare_batch(batch, config) -> dict[str, np.ndarray]          (optional)
        NumPy transform from cached arrays to model inputs (e.g. event ids -> one-hot and
        lookback features), shared with serving so training and serving see the same inputs.
    sample_rolls(model, config, n, seed) -> list[np.ndarray]      (optional)
        n piano rolls [time, pitch-or-class] in [0, 1] for TensorBoard images.
    baselines(config, train, eval) -> dict[str, float]              (optional)
        Held-out numbers of a simple model fit on the same train arrays (e.g. an n-gram's
        per-step NLL), reported on the model card beside the model's own eval metrics.
        `train` is an iterable of array dicts, the split part by part (one per shard of a
        sharded cache), so a baseline never needs the whole split in memory; `eval` is the
        eval split's arrays.
    LOSS_LABEL: str                                                 (optional)
        What "loss" is, as the model card's eval table names it, e.g. "loss (NLL, nats per
        step)" or, for a VAE, "loss (recon + beta * KL, per example)". Without it the card
        says only "loss (training objective)": a card must not claim units it cannot know.
    HAS_PERPLEXITY: bool                                            (optional, default False)
        True only where "loss" is a mean per-step NLL in nats, so that exp(loss) is a
        perplexity; then, and only then, the trainer logs and the card prints one.

Everything else (data walking, split, cache, checkpoints, resume, TensorBoard, early stopping,
export, model card) is generic and lives in `bridge.data.pipeline`, `bridge.train.trainer` and
`bridge.train.export`.
"""
from __future__ import annotations

import importlib
from types import ModuleType


def family(model_class: str) -> ModuleType:
    """The family module for a model class; imports TensorFlow, so only trainers call it."""
    try:
        return importlib.import_module(f"{__name__}.{model_class}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{model_class}":
            raise ValueError(f"no training family for model class {model_class!r}") from None
        raise


def loss_label(module: ModuleType) -> str:
    """The family's name for its "loss" on a model card (see LOSS_LABEL above)."""
    return getattr(module, "LOSS_LABEL", "loss (training objective)")


def has_perplexity(module: ModuleType) -> bool:
    """Whether exp(loss) means anything for this family (see HAS_PERPLEXITY above)."""
    return bool(getattr(module, "HAS_PERPLEXITY", False))
