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


def beam_options(runner: str | None, workers: int, rest: list[str]) -> list[str] | None:
    """Beam's pipeline options for `dataset`, or None for the plain one-process path:
    `--runner NAME` and every option `dataset` does not know pass through to Beam as they are;
    `--workers N` alone is Beam's DirectRunner with N processes on this machine."""
    if runner is None and workers <= 1:
        if rest:
            raise ValueError(f"unrecognized arguments: {' '.join(rest)} (Beam options need --runner or --workers)")
        return None
    if runner is None and workers > 1:
        rest = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing", *rest]
    return [f"--runner={runner or 'DirectRunner'}", *rest]


def cmd_dataset(args: argparse.Namespace) -> int:
    from bridge.data import pipeline
    from bridge.models.configs import CONFIGS

    try:
        options = beam_options(args.runner, args.workers, args.beam_args)
    except ValueError as exc:
        print(f"magenta-bridge: error: {exc}", file=sys.stderr)
        return 2
    if options is None:
        cache = pipeline.build(CONFIGS[args.config], args.data, args.cache, shard_files=args.shard_files)
    else:
        try:
            from bridge.data import beam_pipeline
        except ModuleNotFoundError as exc:
            if exc.name != "apache_beam":
                raise
            print("magenta-bridge: error: --runner and --workers need Apache Beam: pip install -e '.[scale]'",
                  file=sys.stderr)
            return 2
        cache = beam_pipeline.build(CONFIGS[args.config], args.data, args.cache, options, args.shard_files)
    print(pipeline.summary(pipeline.manifest(cache)))
    print(f"cache: {cache}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bridge.train.trainer import train

    command = shlex.join(["magenta-bridge", *sys.argv[1:]])
    train(args.config, args.data, args.run_dir, args.hparams, args.steps, args.seed, args.threads, args.cache,
          command=command, strategy=args.strategy)
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


def _pass_unknown_options(parser: argparse.ArgumentParser, dest: str) -> None:
    """Collect the options this subcommand does not know in `dest` instead of refusing them.
    The top-level parser is not ours to change, but it parses a subcommand's arguments with
    `subparser.parse_known_args` and refuses whatever that leaves over (CPython's
    Lib/argparse.py, _SubParsersAction.__call__, 3.11 to 3.13 alike)."""
    known = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        namespace, extras = known(args, namespace)
        setattr(namespace, dest, [a for a in extras if a != "--"])
        return namespace, []

    parser.parse_known_args = parse_known_args


def register(subparsers) -> None:
    configs = _configs()
    dataset = subparsers.add_parser("dataset", help="turn a MIDI folder into a cached training set")
    dataset.add_argument("config", choices=configs, help="model config whose converter to use")
    dataset.add_argument("--data", type=Path, required=True, action="append",
                         help="folder of .mid files (searched recursively); repeat to combine folders")
    dataset.add_argument("--cache", type=Path, default=Path("cache"), help="cache root folder (default ./cache)")
    dataset.add_argument("--shard-files", type=int, default=0, metavar="N",
                         help="write the cache as npz shards of N files' examples each, which training streams "
                              "(default: one train.npz and one eval.npz)")
    dataset.add_argument("--runner", default=None,
                         help="run the conversion as an Apache Beam pipeline on this runner (DirectRunner, "
                              "FlinkRunner, SparkRunner, DataflowRunner...; needs the scale extra); options that "
                              "dataset does not know go to Beam, e.g. --flink_master=host:8081")
    dataset.add_argument("--workers", type=int, default=1, metavar="N",
                         help="convert with N processes on this machine (Beam's DirectRunner in multi-process mode)")
    dataset.set_defaults(func=cmd_dataset)
    _pass_unknown_options(dataset, "beam_args")

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
    train.add_argument("--strategy", choices=("auto", "none", "mirrored", "multi_worker"), default="auto",
                       help="tf.distribute strategy: mirrored = this machine's GPUs; multi_worker = the machines "
                            "TF_CONFIG names; auto (default) = multi_worker under a TF_CONFIG cluster, mirrored "
                            "with several GPUs, else none")
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
