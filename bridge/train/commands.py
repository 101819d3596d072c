"""`magenta-bridge dataset | train | export`: build a training cache, train, write a bundle.

Importing this module imports no TensorFlow (the CLI loads it on every start); handlers
import the trainer lazily.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _configs() -> list[str]:
    from bridge.models.configs import CONFIGS

    return sorted(CONFIGS)


def cmd_dataset(args: argparse.Namespace) -> int:
    from bridge.data import pipeline
    from bridge.models.configs import CONFIGS

    cache = pipeline.build(CONFIGS[args.config], args.data, args.cache)
    print(pipeline.summary(pipeline.manifest(cache)))
    print(f"cache: {cache}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bridge.train.trainer import train

    command = shlex.join(["magenta-bridge", *sys.argv[1:]])
    train(args.config, args.data, args.run_dir, args.hparams, args.steps, args.seed, args.threads, args.cache,
          command=command)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "magenta-js":
        from bridge.interop.commands import export_magenta_js

        return export_magenta_js(args.source, args.output, args.quantize)
    if args.quantize:
        print("magenta-bridge: error: --quantize applies to --format magenta-js only", file=sys.stderr)
        return 2
    from bridge.train.export import export

    path = export(args.source, args.output, args.name)
    print(f"bundle written to {path}")
    return 0


def register(subparsers) -> None:
    configs = _configs()
    dataset = subparsers.add_parser("dataset", help="turn a MIDI folder into a cached training set")
    dataset.add_argument("config", choices=configs, help="model config whose converter to use")
    dataset.add_argument("--data", type=Path, required=True, action="append",
                         help="folder of .mid files (searched recursively); repeat to combine folders")
    dataset.add_argument("--cache", type=Path, default=Path("cache"), help="cache root folder (default ./cache)")
    dataset.set_defaults(func=cmd_dataset)

    train = subparsers.add_parser("train", help="train a model config on a MIDI folder (resumes a killed run)")
    train.add_argument("config", choices=configs, help="model config to train")
    train.add_argument("--data", type=Path, required=True, action="append",
                       help="folder of .mid files (searched recursively); repeat to combine folders")
    train.add_argument("--run-dir", type=Path, required=True, help="folder for checkpoints, logs and results")
    train.add_argument("--hparams", default=None, help="model hparams or trainer settings, e.g. "
                       "units=128,batch_size=32,eval_examples=512 (lists as 256:256)")
    train.add_argument("--steps", type=int, default=None, help="training steps (default: the config's max_steps)")
    train.add_argument("--seed", type=int, default=0, help="seed for batches, initial weights and dropout")
    train.add_argument("--threads", type=int, default=1, help="TensorFlow intra/inter-op threads (default 1)")
    train.add_argument("--cache", type=Path, default=Path("cache"), help="cache root folder (default ./cache)")
    train.set_defaults(func=cmd_train)

    export = subparsers.add_parser("export", help="write a trained run as a bundle, or a bundle as a magenta.js checkpoint")
    export.add_argument("source", type=Path, help="a finished run folder (--format bundle) or a bundle folder "
                        "(--format magenta-js)")
    export.add_argument("-o", "--output", type=Path, required=True,
                        help="folder to write, e.g. bundles/my_model, or web/my_model for magenta.js")
    export.add_argument("--format", choices=("bundle", "magenta-js"), default="bundle",
                        help="bundle (default): a run's best checkpoint as a serving bundle; magenta-js: a bundle as "
                             "config.json + weights_manifest.json + shards that @magenta/music loads by URL")
    export.add_argument("--quantize", choices=("uint8", "uint16"), default=None,
                        help="magenta-js only: store weights as 8 or 16-bit affine codes (smaller download, "
                             "slightly different numbers)")
    export.add_argument("--name", default=None, help="bundle name (default: the output folder's name)")
    export.set_defaults(func=cmd_export)
