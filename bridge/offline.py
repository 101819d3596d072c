"""A tool run offline from the command line: its options derived from the Param table, MIDI files
in, progress and notes on stderr.

`magenta-bridge <tool>` (bridge.cli) and `magenta-bridge play --tool` (bridge.play) both build
on this module, so neither imports the other. Input clips get the server's limits
(bridge.limits): a tool takes the same clips from a file as from a client.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from bridge import install
from bridge.clip import Clip
from bridge.limits import Limits
from bridge.model_store import ModelStore
from bridge.params import Param, ParamError
from bridge.saving import is_drums
from bridge.tools import Tool, ToolContext, ToolError


def note(text: str) -> None:
    """What the user should know about a result that is not an error (ToolContext.notice)."""
    print(f"magenta-bridge: note: {text}", file=sys.stderr)


# --- options ---------------------------------------------------------------------------------

def existing_folder(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return path


def add_bundles_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundles", type=existing_folder, metavar="DIR",
                        help=f"load bundles from this folder only (default: the folders in ${install.ENV_BUNDLES}, "
                             f"then {install.user_bundles_dir()}, then the bundles that ship with magenta-bridge; "
                             "`magenta-bridge bundles` lists them)")


def add_track_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--track", metavar="NAME|INDEX",
                        help="read this track of each input file (default: for drums the drum channel, else the "
                             "track named MELODY, else the one with the most notes; a note says which was read)")


def option(param: Param) -> str:
    return "--" + param.name.replace("_", "-")


def range_default(param: Param) -> str:
    if param.kind == "bool":  # the CLI spells a bool as --name / --no-name
        return f"default {'on' if param.default else 'off'}"
    default = "none" if param.default is None else param.default
    return f"{param.describe_range()}, default {default}"


def _converter(param: Param) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:  # an enum also takes its index, as a Live menu sends it
            return param.coerce(int(text) if param.kind == "enum" and text.isdigit() else text)
        except ParamError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = param.kind  # argparse names the type in its fallback message
    return convert


def add_param(parser: argparse.ArgumentParser | argparse._ArgumentGroup, param: Param) -> None:
    """One option per Param; default None means "not given", so the tool's own default applies."""
    help_text = f"{param.help} ({range_default(param)})".replace("%", "%%")
    if param.kind == "bool":
        parser.add_argument(option(param), dest=param.name, action=argparse.BooleanOptionalAction,
                            default=None, help=help_text)
    else:
        metavar = {"int": "INT", "float": "NUMBER", "str": "TEXT"}.get(param.kind)
        parser.add_argument(option(param), dest=param.name, type=_converter(param), default=None,
                            choices=param.choices or None, metavar=metavar, help=help_text)


def given_params(tool: Tool, args: argparse.Namespace) -> dict[str, Any]:
    """The tool parameters the user set (those left out take the tool's defaults)."""
    return {p.name: getattr(args, p.name) for p in tool.params if getattr(args, p.name) is not None}


# --- running ---------------------------------------------------------------------------------

class Progress:
    """One self-overwriting progress line on stderr, ended before the summary goes to stdout.

    Models report at every step (their cancellation point); the line is rewritten only when
    what it shows changes."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.shown = ""

    def __call__(self, fraction: float, message: str) -> None:
        line = f"\r{self.tool}: {fraction:4.0%} {message}".ljust(60)
        if line != self.shown:
            print(line, end="", file=sys.stderr, flush=True)
            self.shown = line

    def end(self) -> None:
        if self.shown:
            print(file=sys.stderr, flush=True)
            self.shown = ""


def run(tool: Tool, given: dict[str, Any], inputs: list[str], track: str | None, bundles: Path | None) -> list[Clip]:
    """Read each input as the tool wants it, run the tool on the installed models, and tell the
    user which track of a file was read and what the tool noticed. ToolError if no clips."""
    from bridge.midi_io import read_midi, read_part

    track_key = int(track) if track is not None and track.isdigit() else track
    drums = is_drums(tool, given)  # also checks the parameters before any file is read
    clips = []
    for path in inputs:
        if tool.min_inputs == 0:  # an optional input (generate) only lends its tempo and meter
            clips.append(read_midi(path, track=track_key))
            continue
        clip, which = read_part(path, drums, track_key)
        clips.append(clip)
        if which:
            note(which)
    Limits().check_clips(clips)
    progress = Progress(tool.name)
    ctx = ToolContext(ModelStore.from_dir(install.bundle_search_path(bundles)), progress=progress)
    try:
        results = tool(clips, given, ctx)
    finally:
        progress.end()
    for text in ctx.notices:
        note(text)
    if not results:
        raise ToolError(f"{tool.name} returned no clips")
    return results
