"""`magenta-bridge import` and `export --format magenta-js`: Magenta checkpoints in, magenta.js checkpoints out.

Importing this module imports neither TensorFlow nor the model code (the CLI loads it on every
start); the handlers import them when they run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _refused(exc: Exception) -> int:
    """A refusal is the user's answer, not a crash: one line on stderr, exit code 2 (as the CLI's others)."""
    print(f"magenta-bridge: error: {exc}", file=sys.stderr)
    return 2


def cmd_import(args: argparse.Namespace) -> int:
    from bridge.interop.magenta_import import ImportRefused, import_checkpoint
    from bridge.interop.tf_checkpoint import CheckpointError

    try:
        path, imported = import_checkpoint(args.path, args.output, args.name, args.config)
    except (ImportRefused, CheckpointError) as exc:
        return _refused(exc)
    print(f"imported {imported.layout} -> {path}")
    return 0


def export_magenta_js(bundle: Path, output: Path, quantize: str | None) -> int:
    """`export --format magenta-js` (registered with `export` in bridge.train.commands)."""
    from bridge.interop.magenta_js import ExportRefused, export_js

    try:
        path = export_js(bundle, output, quantize)
    except ExportRefused as exc:
        return _refused(exc)
    print(f"magenta.js checkpoint written to {path} (serve the folder over HTTP and load it by URL)")
    return 0


def register(subparsers) -> None:
    imp = subparsers.add_parser("import", help="turn a Magenta checkpoint (.mag, MusicVAE/GrooVAE checkpoint) into a bundle")
    imp.add_argument("path", type=Path, help="a .mag GeneratorBundle, a checkpoint folder or a checkpoint prefix")
    imp.add_argument("-o", "--output", type=Path, required=True, help="bundle folder to write, e.g. bundles/basic_rnn")
    imp.add_argument("--name", default=None, help="bundle name (default: the output folder's name)")
    imp.add_argument("--config", default=None,
                     help="Magenta config name, e.g. cat-mel_2bar_small or groovae_2bar_humanize (default: the .mag's "
                          "generator id, else the checkpoint's file or folder name)")
    imp.set_defaults(func=cmd_import)

