"""A square grid of clips morphing between four corner clips, written as MIDI files.

    python examples/python/interpolation_grid.py TL.mid TR.mid BL.mid BR.mid OUT_DIR [--size 4]

The bridge's `interpolate` tool walks from one clip to another; a grid is walks of walks: the
left column from top-left to bottom-left, the right column from top-right to bottom-right, then
each row from its left clip to its right clip. `keep_ends` keeps the corners exactly as given.
Files are `r<row>c<col>.mid` (0-based), plus `grid.mid` with every clip in reading order.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.client import BridgeClient
from bridge.clip import Clip
from bridge.midi_io import read_midi, write_midi
from bridge.protocol import DEFAULT_PORT


def grid(client: BridgeClient, corners: tuple[Clip, Clip, Clip, Clip], size: int, **params: object) -> list[list[Clip]]:
    """size x size clips: rows top to bottom, columns left to right."""
    top_left, top_right, bottom_left, bottom_right = corners

    def walk(a: Clip, b: Clip) -> list[Clip]:
        return client.run("interpolate", [a, b], steps=size, keep_ends=True, **params)

    left, right = walk(top_left, bottom_left), walk(top_right, bottom_right)
    return [walk(a, b) for a, b in zip(left, right)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corners", type=Path, nargs=4, metavar="CORNER.mid",
                        help="top-left, top-right, bottom-left, bottom-right")
    parser.add_argument("target", type=Path, help="folder for the grid (created if missing)")
    parser.add_argument("--size", type=int, default=4, help="clips per side, 2-16")
    parser.add_argument("--type", choices=("melody", "drums"), default="melody")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    if not 2 <= args.size <= 16:
        parser.error("--size must be 2-16")
    corners = tuple(read_midi(path) for path in args.corners)
    with BridgeClient(args.host, args.port, timeout=120.0) as client:
        rows = grid(client, corners, args.size, type=args.type)
    drums = args.type == "drums"
    args.target.mkdir(parents=True, exist_ok=True)
    for r, row in enumerate(rows):
        for c, clip in enumerate(row):
            write_midi(args.target / f"r{r}c{c}.mid", [clip.with_notes(clip.notes, name=f"r{r}c{c}")], drums=drums)
    write_midi(args.target / "grid.mid", [clip for row in rows for clip in row], sequence=True, drums=drums,
               name="grid")
    print(f"{args.size}x{args.size} grid -> {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
