"""The `magenta-bridge` command: serve, check the install, list models, and run any tool offline.

Every tool subcommand and each of its options is derived from `bridge.tools.TOOLS`, so a tool
or parameter added there shows up here with its help, range and default. Handlers are
`args.func(args) -> int | None`; user errors end with a one-line message and exit code 2.
Importing this module stays light: no TensorFlow, no server, no model code until a command runs.
"""
from __future__ import annotations

import argparse
import importlib
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from bridge.bundle import BundleError
from bridge.clip import ClipError
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore
from bridge.params import Param, ParamError
from bridge.protocol import DEFAULT_PORT, DEFAULT_TCP_PORT
from bridge.tools import TOOLS, Tool, ToolContext, ToolError

USER_ERRORS = (ToolError, ParamError, ClipError, BundleError, OSError)
DRUM_TOOLS = ("groove", "drumify")


def _fail(message: str) -> int:
    print(f"magenta-bridge: error: {message}", file=sys.stderr)
    return 2


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


# --- serve -----------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int | None:
    from bridge.server import serve

    # Limits the user did not set are left out, so the server's own defaults apply.
    limits = {"tcp_port": args.tcp_port, "queue_size": args.queue_size, "default_timeout": args.timeout,
              "allow": args.allow, "output_dir": args.output_dir}
    live = {"host": args.live_host, "port": args.live_port, "reply_port": args.live_reply_port}
    if any(v is not None for v in live.values()):
        from bridge.ableton import AbletonOSC

        limits["ableton"] = AbletonOSC(**{k: v for k, v in live.items() if v is not None})
    return serve(host=args.host, port=args.port, bundles_dir=args.bundles, log_level=args.log_level,
                 **{k: v for k, v in limits.items() if v is not None})


# --- doctor ----------------------------------------------------------------------------------

# Run in a fresh interpreter so that modules this process already imported cannot hide or fake
# a TensorFlow import: it imports what `serve` imports and loads the bundles, as serving does.
_SERVE_IMPORT_CHECK = """
import sys
import bridge.server
from bridge.model_store import ModelStore
ModelStore.from_dir(sys.argv[1])
print(" ".join(sorted(m for m in ("tensorflow", "keras", "tf_keras") if m in sys.modules)))
"""


def _check_imports() -> list[tuple[str, bool, str]]:
    rows = [("Python >= 3.11", sys.version_info >= (3, 11), sys.version.split()[0])]
    for module, dist in (("numpy", "numpy"), ("mido", "mido"), ("pythonosc", "python-osc")):
        try:
            importlib.import_module(module)
            rows.append((f"import {module}", True, metadata.version(dist)))
        except (ImportError, metadata.PackageNotFoundError) as exc:
            rows.append((f"import {module}", False, str(exc)))
    return rows


def _check_serve_imports(bundles: Path) -> tuple[str, bool, str]:
    done = subprocess.run([sys.executable, "-c", _SERVE_IMPORT_CHECK, str(bundles)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return ("serve imports without TensorFlow", False, f"bridge.server failed to import: {last}")
    heavy = done.stdout.strip()
    return ("serve imports without TensorFlow", not heavy, f"imports {heavy}" if heavy else "numpy only")


def _check_port(host: str, port: int) -> tuple[str, bool, str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return (f"UDP {host}:{port} free", False, f"{exc.strerror} (is a server already running?)")
    return (f"UDP {host}:{port} free", True, "")


def cmd_doctor(args: argparse.Namespace) -> int:
    rows: list[tuple[str, bool | None, str]] = list(_check_imports())
    rows.append(_check_serve_imports(args.bundles))
    store = ModelStore.from_dir(args.bundles)
    for item in store.loaded:
        rows.append((f"bundle {item.name}", True, f"{item.bundle.config['kind']}: {', '.join(item.bundle.config['tools'])}"))
    for name, reason in store.refused.items():
        rows.append((f"bundle {name}", False, reason))
    if not store.loaded and not store.refused:
        # Not an error: the server runs, and every tool answers model_not_installed.
        rows.append(("bundles", None, f"none installed in {args.bundles}"))
    rows.append(_check_port("127.0.0.1", args.port))
    width = max(len(label) for label, _, _ in rows)
    for label, ok, detail in rows:
        mark = "!" if ok is None else "✓" if ok else "✗"
        print(f"{mark} {label:<{width}}  {detail}".rstrip())
    return 1 if any(ok is False for _, ok, _ in rows) else 0


# --- models ----------------------------------------------------------------------------------

def _range_default(param: Param) -> str:
    if param.kind == "bool":  # the CLI spells a bool as --name / --no-name
        return f"default {'on' if param.default else 'off'}"
    default = "none" if param.default is None else param.default
    return f"{param.describe_range()}, default {default}"


def cmd_models(args: argparse.Namespace) -> int:
    store = ModelStore.from_dir(args.bundles)
    print(f"Bundles in {args.bundles}:")
    for item in store.describe():
        print(f"  ✓ {item['name']}  {item['kind']}  tools: {', '.join(item['tools'])}  ({item['model_class']})")
    for name, reason in store.refused.items():
        print(f"  ✗ {name}  {reason}")
    if not store.loaded and not store.refused:
        print("  (none installed)")
    for tool in TOOLS.values():
        inputs = str(tool.min_inputs) if tool.min_inputs == tool.max_inputs else f"{tool.min_inputs}-{tool.max_inputs}"
        print(f"\n{tool.name}: {tool.help} Input clips: {inputs}.")
        for param in tool.params:
            print(f"  {_option(param):<18} {_range_default(param)}. {param.help}")
    return 0


# --- offline tools ---------------------------------------------------------------------------

def _option(param: Param) -> str:
    return "--" + param.name.replace("_", "-")


def _converter(param: Param) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:  # an enum also takes its index, as a Live menu sends it
            return param.coerce(int(text) if param.kind == "enum" and text.isdigit() else text)
        except ParamError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = param.kind  # argparse names the type in its fallback message
    return convert


def _add_param(parser: argparse.ArgumentParser, param: Param) -> None:
    """One option per Param; default None means "not given", so the tool's own default applies."""
    help_text = f"{param.help} ({_range_default(param)})".replace("%", "%%")
    if param.kind == "bool":
        parser.add_argument(_option(param), dest=param.name, action=argparse.BooleanOptionalAction,
                            default=None, help=help_text)
    else:
        metavar = {"int": "INT", "float": "NUMBER", "str": "TEXT"}.get(param.kind)
        parser.add_argument(_option(param), dest=param.name, type=_converter(param), default=None,
                            choices=param.choices or None, metavar=metavar, help=help_text)


class Progress:
    """One self-overwriting progress line on stderr, ended before the summary goes to stdout."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.shown = False

    def __call__(self, fraction: float, message: str) -> None:
        print(f"\r{self.tool}: {fraction:4.0%} {message}".ljust(60), end="", file=sys.stderr, flush=True)
        self.shown = True

    def end(self) -> None:
        if self.shown:
            print(file=sys.stderr, flush=True)
            self.shown = False


def run_tool(tool: Tool, args: argparse.Namespace) -> int:
    """Read the inputs, run the tool on the installed models, write the results as MIDI."""
    from bridge.midi_io import read_midi, write_midi

    given = {p.name: getattr(args, p.name) for p in tool.params if getattr(args, p.name) is not None}
    track = int(args.track) if args.track is not None and args.track.isdigit() else args.track
    clips = [read_midi(path, track=track) for path in args.input]
    store = ModelStore.from_dir(args.bundles)
    progress = Progress(tool.name)
    try:
        results = tool(clips, given, ToolContext(store, progress=progress))
    finally:
        progress.end()
    if not results:
        raise ToolError(f"{tool.name} returned no clips")
    drums = tool.name in DRUM_TOOLS or tool.resolve(given).get("type") == "drums"
    named = [c if c.name else c.with_notes(c.notes, name=f"{tool.name} {i}/{len(results)}")
             for i, c in enumerate(results, 1)]
    if "{i}" in args.output:
        paths = [write_midi(args.output.replace("{i}", str(i)), [c], drums=drums) for i, c in enumerate(named, 1)]
        where = f"{paths[0]} .. {paths[-1]}" if len(paths) > 1 else str(paths[0])
    else:
        where = str(write_midi(args.output, named, drums=drums, name=tool.name))
    notes = sum(len(c.notes) for c in named)
    bars = {c.bars for c in named}
    each = f", {bars.pop():g} bars each" if len(bars) == 1 else ""
    print(f"{tool.name}: {len(named)} clip(s), {notes} notes{each} -> {where}")
    return 0


def _add_tool(subparsers: argparse._SubParsersAction, tool: Tool) -> None:
    parser = subparsers.add_parser(tool.name, help=tool.help, description=tool.help, allow_abbrev=False)
    count = str(tool.min_inputs) if tool.min_inputs == tool.max_inputs else f"{tool.min_inputs}-{tool.max_inputs}"
    parser.add_argument("-i", "--input", action="extend", nargs="+", default=[], metavar="FILE",
                        required=tool.min_inputs > 0, help=f"input MIDI file(s), {count} in all")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.mid",
                        help="output MIDI file: one track per result; '{i}' in the name writes one file per result")
    parser.add_argument("--track", metavar="NAME|INDEX", help="read only this track of each input file")
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR, help="folder of model bundles")
    group = parser.add_argument_group("tool parameters")
    for param in tool.params:
        _add_param(group, param)
    parser.set_defaults(func=lambda args: run_tool(tool, args))


# --- parser and entry point ------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magenta-bridge", description=__doc__.splitlines()[0], allow_abbrev=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = subparsers.add_parser("serve", help="run the OSC server", allow_abbrev=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UDP port (default {DEFAULT_PORT})")
    serve.add_argument("--tcp-port", type=int, metavar="PORT",
                       help=f"also take SLIP-framed OSC over TCP on this port, e.g. {DEFAULT_TCP_PORT} (default: off)")
    serve.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR, help="folder of model bundles")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--queue-size", type=int, help="requests waiting at most (default: the server's)")
    serve.add_argument("--timeout", type=float, help="seconds a request may run (default: the server's)")
    serve.add_argument("--allow", nargs="+", metavar="IP", help="answer only these client addresses (default: any client that reaches --host)")
    serve.add_argument("--output-dir", type=Path, metavar="DIR",
                       help="folder where requests with `save NAME` write MIDI files (default ~/Music/magenta-bridge)")
    serve.add_argument("--live-host", metavar="HOST", help="where AbletonOSC runs, for `input live` and `deliver live` (default 127.0.0.1)")
    serve.add_argument("--live-port", type=int, metavar="PORT", help="AbletonOSC's listening port (default 11000)")
    serve.add_argument("--live-reply-port", type=int, metavar="PORT", help="port AbletonOSC replies to (default 11001)")
    serve.set_defaults(func=cmd_serve)

    doctor = subparsers.add_parser("doctor", help="check the installation", allow_abbrev=False)
    doctor.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR, help="folder of model bundles")
    doctor.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UDP port to check (default {DEFAULT_PORT})")
    doctor.set_defaults(func=cmd_doctor)

    models = subparsers.add_parser("models", help="list installed bundles and every tool's parameters")
    models.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR, help="folder of model bundles")
    models.set_defaults(func=cmd_models)

    for tool in TOOLS.values():
        _add_tool(subparsers, tool)
    try:
        from bridge.train.commands import register
    except ImportError:  # the training commands are optional; everything else works without them
        pass
    else:
        register(subparsers)
    from bridge.play import register as register_play

    register_play(subparsers)
    from bridge.interop.commands import register as register_interop

    register_interop(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except USER_ERRORS as exc:
        return _fail(_describe(exc))
    except KeyboardInterrupt:
        return 130
