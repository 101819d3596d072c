"""Continue every MIDI file in a folder through a running bridge, one result file per input.

    python examples/python/continue_folder.py IN_DIR OUT_DIR [--variations 2] [--length 2]

A batch job for the night: each `name.mid` in IN_DIR becomes `name_continued.mid` in OUT_DIR,
one track per variation, at the input's tempo and meter. A file that fails (not MIDI, too many
notes, a model error) is reported and skipped; the exit code is 1 if any failed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.client import BridgeClient, BridgeError
from bridge.clip import ClipError
from bridge.midi_io import read_midi, write_midi
from bridge.protocol import DEFAULT_PORT


def continue_folder(client: BridgeClient, source: Path, target: Path, **params: object) -> list[Path]:
    """Continue each MIDI file of `source` into `target`; return the files that failed."""
    target.mkdir(parents=True, exist_ok=True)
    failed = []
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".mid", ".midi"))
    for path in files:
        try:
            clips = client.run("continue", [read_midi(path)], **params)
            out = write_midi(target / f"{path.stem}_continued.mid", clips, drums=params.get("type") == "drums",
                             name=f"{path.stem} continued")
        except (BridgeError, ClipError, OSError) as exc:
            print(f"{path.name}: failed: {exc}", file=sys.stderr)
            failed.append(path)
            continue
        print(f"{path.name}: {len(clips)} variation(s) -> {out}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of .mid files")
    parser.add_argument("target", type=Path, help="folder for the results (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--variations", type=int, default=2)
    parser.add_argument("--length", type=int, default=2, help="bars to add")
    parser.add_argument("--type", choices=("auto", "melody", "poly", "drums"), default="auto",
                        help="auto: poly for chords and piano parts when a poly model is installed, else melody")
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args(argv)
    with BridgeClient(args.host, args.port, timeout=120.0) as client:
        failed = continue_folder(client, args.source, args.target, variations=args.variations,
                                 length=args.length, type=args.type, temperature=args.temperature)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
