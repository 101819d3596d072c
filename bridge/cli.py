"""The `magenta-bridge` command: serve, check the install, list models, and run any tool offline.

Every tool subcommand and each of its options is derived from `bridge.tools.TOOLS`, so a tool
or parameter added there shows up here with its help, range and default. Handlers are
`args.func(args) -> int | None`; user errors end with a one-line message and exit code 2.
Importing this module stays light: no TensorFlow, no server, no model code until a command runs.
"""
from __future__ import annotations

import argparse
import errno
import filecmp
import importlib
import os
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bridge import install, offline
from bridge import protocol as P
from bridge.bundle import BundleError
from bridge.clip import ClipError
from bridge.model_store import ModelStore
from bridge.params import Param, ParamError
from bridge.saving import is_drums
from bridge.tools import TOOLS, Tool, ToolError

USER_ERRORS = (ToolError, ParamError, ClipError, BundleError, OSError)


def _fail(message: str) -> int:
    print(f"magenta-bridge: error: {message}", file=sys.stderr)
    return 2


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


# --- where bundles are -----------------------------------------------------------------------

def _folder_state(folder: Path) -> str:
    if not folder.is_dir():
        return "not made yet: `bundles --copy` makes it" if folder == install.user_bundles_dir() else "no such folder"
    count = len(install.bundle_folders(folder))
    return f"{count} bundle{'s' if count != 1 else ''}"


def _print_search_path(search: install.SearchPath, names: bool = False) -> None:
    """The bundle folders in search order; with `names`, the bundles in each."""
    print("Bundle folders, searched in this order (a bundle name in an earlier folder wins):")
    seen: dict[str, Path] = {}
    for folder in search:
        print(f"  {folder}  ({_folder_state(folder)})")
        for path in install.bundle_folders(folder) if names else ():
            print(f"    {path.name}" + (f"  (not loaded: the one in {seen[path.name]} is)" if path.name in seen else ""))
            seen.setdefault(path.name, folder)


# --- serve -----------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int | None:
    from bridge.serving import serve

    # Limits the user did not set are left out, so the server's own defaults apply.
    limits = {"tcp_port": args.tcp_port, "queue_size": args.queue_size, "default_timeout": args.timeout,
              "allow": args.allow, "output_dir": args.output_dir}
    live = {"host": args.live_host, "port": args.live_port, "reply_port": args.live_reply_port}
    if any(v is not None for v in live.values()):
        from bridge.ableton import AbletonOSC

        limits["ableton"] = AbletonOSC(**{k: v for k, v in live.items() if v is not None})
    try:
        return serve(host=args.host, port=args.port, bundles_dir=install.bundle_search_path(args.bundles),
                     log_level=args.log_level, **{k: v for k, v in limits.items() if v is not None})
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # asyncio words a TCP bind failure "error while attempting to bind on address ..."
        # (asyncio/base_events.py, create_server); a UDP one is the bare socket error.
        tcp = "attempting to bind" in (exc.strerror or "")
        where = f"TCP port {args.tcp_port}" if tcp else f"UDP port {args.port}"
        raise ToolError(f"{where} on {args.host} is already in use: is a bridge already running? "
                        f"`magenta-bridge doctor` tells; --{'tcp-port' if tcp else 'port'} picks another port") from None


# --- doctor ----------------------------------------------------------------------------------

# Run in a fresh interpreter so that modules this process already imported cannot hide or fake
# a TensorFlow import: it imports what `serve` imports and loads the bundles, as serving does.
_SERVE_IMPORT_CHECK = """
import sys
import bridge.serving
from bridge.model_store import ModelStore
ModelStore.from_dir(sys.argv[1:])
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


def _check_serve_imports(folders: list[Path]) -> tuple[str, bool, str]:
    done = subprocess.run([sys.executable, "-c", _SERVE_IMPORT_CHECK, *map(str, folders)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return ("serve imports without TensorFlow", False, f"bridge.serving failed to import: {last}")
    heavy = done.stdout.strip()
    return ("serve imports without TensorFlow", not heavy, f"imports {heavy}" if heavy else "numpy only")


def bridge_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a magenta-bridge answers /bridge/ping on this UDP port."""
    from pythonosc.osc_message import OscMessage, ParseError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(P.message(P.PING, "doctor"), (host, port))
            return OscMessage(sock.recv(P.MAX_DATAGRAM)).address == P.PONG
        except (OSError, ParseError):  # a timeout, an ICMP refusal, or a reply that is not OSC
            return False


def _check_port(host: str, port: int) -> tuple[str, bool | None, str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if bridge_answers(host, port):
                return (f"UDP {host}:{port}", None, "a bridge is already running on this port")
            return (f"UDP {host}:{port} free", False, f"{exc.strerror}: another program holds it; serve --port picks another")
    return (f"UDP {host}:{port} free", True, "")


def _search_rows(search: install.SearchPath) -> list[tuple[str, bool | None, str]]:
    """A row per bundle folder; a missing one is wrong only where the user listed it (the user
    folder exists once something is copied there)."""
    listed = install.env_bundle_folders()
    return [(f"bundle folder {folder}", folder.is_dir() or folder not in listed, _folder_state(folder))
            for folder in search]


def cmd_doctor(args: argparse.Namespace) -> int:
    rows: list[tuple[str, bool | None, str]] = list(_check_imports())
    search = install.bundle_search_path(args.bundles)
    rows.append(_check_serve_imports(list(search)))
    rows += _search_rows(search)
    store = ModelStore.from_dir(search)
    for item in store.loaded:
        rows.append((f"bundle {item.name}", True, f"{item.bundle.config['kind']}: {', '.join(item.bundle.config['tools'])}"))
    for name, reason in store.refused.items():
        rows.append((f"bundle {name}", False, reason))
    if not store.loaded:
        rows.append(("bundles", False, "none load from the folders above: every tool would answer model_not_installed"))
    rows.append(_check_port("127.0.0.1", args.port))
    width = max(len(label) for label, _, _ in rows)
    for label, ok, detail in rows:
        mark = "!" if ok is None else "✓" if ok else "✗"
        print(f"{mark} {label:<{width}}  {detail}".rstrip())
    return 1 if any(ok is False for _, ok, _ in rows) else 0


# --- models ----------------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    search = install.bundle_search_path(args.bundles)
    _print_search_path(search)
    store = ModelStore.from_dir(search)
    print("Bundles:")
    for loaded, item in zip(store.loaded, store.describe()):
        print(f"  ✓ {item['name']}  {item['kind']}  tools: {', '.join(item['tools'])}  ({item['model_class']}, "
              f"in {loaded.bundle.path.parent})")
    for name, reason in store.refused.items():
        print(f"  ✗ {name}  {reason}")
    if not store.loaded and not store.refused:
        print("  (none installed)")
    from bridge.duet.modes import MODES

    for tool in TOOLS.values():
        inputs = str(tool.min_inputs) if tool.min_inputs == tool.max_inputs else f"{tool.min_inputs}-{tool.max_inputs}"
        _print_params(f"{tool.name}: {tool.help} Input clips: {inputs}.", tool.params)
    for mode in MODES.values():
        _print_params(f"{mode.name} (play along; answers by {mode.tool}): {mode.help}", mode.params)
    return 0


def _print_params(title: str, params: tuple[Param, ...]) -> None:
    print(f"\n{title}")
    for param in params:
        print(f"  {offline.option(param):<18} {offline.range_default(param)}. {param.help}")


# --- bundles and devices ---------------------------------------------------------------------

def cmd_bundles(args: argparse.Namespace) -> int:
    search = install.bundle_search_path(args.bundles)
    if not (args.copy or args.all):
        _print_search_path(search, names=True)
        print("`magenta-bridge bundles --copy NAME` copies one into your own folder.")
        return 0
    target = args.to or install.user_bundles_dir()
    sources = install.bundle_folders(install.shipped("bundles")) if args.all else []
    others = install.SearchPath(f for f in search if f.resolve() != target.resolve())
    for item in args.copy:
        source = Path(item).expanduser()
        if not (source / "config.json").is_file():
            source = install.find_bundle(item, others)
        if source is None:
            raise BundleError(f"no bundle {item!r}: not a bundle folder, nor a bundle name in {others}")
        sources.append(source)
    for source in sources:
        print(f"copied {source} -> {install.copy_bundle(source, target, args.force)}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    library = args.to or install.live_user_library()
    targets = install.device_targets(library)
    if not targets:
        raise ToolError(f"no Max for Live devices in {install.devices_dir()}")
    print(f"Max for Live devices in {install.devices_dir()}:")
    if not args.copy:
        for source, target in targets:
            print(f"  {source.name}  -> {target.parent}")
        found = "" if library.is_dir() else " (not found: pass --to with the folder Live's Preferences > Library shows)"
        print(f"Live's User Library: {library}{found}. `magenta-bridge devices --copy` copies them there.")
        return 0
    if not library.is_dir():
        raise ToolError(f"Live's User Library is not at {library}; pass --to with the folder Live's "
                        "Preferences > Library shows")
    for source, target in targets:
        if target.is_file() and not filecmp.cmp(source, target, shallow=False) and not args.force:
            raise ToolError(f"{target} differs from {source.name}; pass --force to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        print(f"  {source.name} -> {target}")
    return 0


# --- offline tools ---------------------------------------------------------------------------

def run_tool(tool: Tool, args: argparse.Namespace) -> int:
    """Read the inputs, run the tool on the installed models, write the results as MIDI."""
    from bridge.midi_io import write_midi

    given = offline.given_params(tool, args)
    # The output folder first: a typo in -o must not cost a model run.
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    results = offline.run(tool, given, args.input, args.track, args.bundles)
    drums = is_drums(tool, given)
    named = [c if c.name else c.with_notes(c.notes, name=f"{tool.name} {i}/{len(results)}")
             for i, c in enumerate(results, 1)]
    if "{i}" in args.output:
        paths = [write_midi(args.output.replace("{i}", str(i)), [c], drums=drums) for i, c in enumerate(named, 1)]
        where = f"{paths[0]} .. {paths[-1]}" if len(paths) > 1 else str(paths[0])
    else:
        where = str(write_midi(args.output, named, drums=drums, name=tool.name))
    notes = sum(len(c.notes) for c in named)
    bars = {c.bars for c in named}
    each = ""
    if len(bars) == 1:
        (length,) = bars
        each = f", {length:g} bar{'' if length == 1 else 's'} each"
    print(f"{tool.name}: {len(named)} clip(s), {notes} notes{each} -> {where}")
    return 0


def _add_tool(subparsers: argparse._SubParsersAction, tool: Tool) -> None:
    parser = subparsers.add_parser(tool.name, help=tool.help, description=tool.help, allow_abbrev=False)
    count = str(tool.min_inputs) if tool.min_inputs == tool.max_inputs else f"{tool.min_inputs}-{tool.max_inputs}"
    parser.add_argument("-i", "--input", action="extend", nargs="+", default=[], metavar="FILE",
                        required=tool.min_inputs > 0, help=f"input MIDI file(s), {count} in all")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.mid",
                        help="output MIDI file: one track per result; '{i}' in the name writes one file per result")
    offline.add_track_option(parser)
    offline.add_bundles_option(parser)
    group = parser.add_argument_group("tool parameters")
    for param in tool.params:
        offline.add_param(group, param)
    parser.set_defaults(func=lambda args: run_tool(tool, args))


# --- parser and entry point ------------------------------------------------------------------

def _address(text: str) -> str:
    try:
        return P.ip_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magenta-bridge", description=__doc__.splitlines()[0], allow_abbrev=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = subparsers.add_parser("serve", help="run the OSC server", allow_abbrev=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=P.DEFAULT_PORT, help=f"UDP port (default {P.DEFAULT_PORT})")
    serve.add_argument("--tcp-port", type=int, metavar="PORT",
                       help=f"also take SLIP-framed OSC over TCP on this port, e.g. {P.DEFAULT_TCP_PORT} (default: off)")
    offline.add_bundles_option(serve)
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--queue-size", type=int, help="requests waiting at most (default: the server's)")
    serve.add_argument("--timeout", type=float, help="seconds a request may run (default: the server's)")
    serve.add_argument("--allow", nargs="+", metavar="IP", type=_address,
                       help="answer only these client addresses (default: any client that reaches --host)")
    serve.add_argument("--output-dir", type=Path, metavar="DIR",
                       help="folder where requests with `save NAME` write MIDI files (default ~/Music/magenta-bridge)")
    serve.add_argument("--live-host", metavar="HOST", help="where AbletonOSC runs, for `input live` and `deliver live` (default 127.0.0.1)")
    serve.add_argument("--live-port", type=int, metavar="PORT", help="AbletonOSC's listening port (default 11000)")
    serve.add_argument("--live-reply-port", type=int, metavar="PORT", help="port AbletonOSC replies to (default 11001)")
    serve.set_defaults(func=cmd_serve)

    doctor = subparsers.add_parser("doctor", help="check the installation", allow_abbrev=False)
    offline.add_bundles_option(doctor)
    doctor.add_argument("--port", type=int, default=P.DEFAULT_PORT, help=f"UDP port to check (default {P.DEFAULT_PORT})")
    doctor.set_defaults(func=cmd_doctor)

    models = subparsers.add_parser("models", help="list installed bundles and every tool's parameters")
    offline.add_bundles_option(models)
    models.set_defaults(func=cmd_models)

    bundles = subparsers.add_parser(
        "bundles", help="list the bundle folders, or copy bundles into your own folder", allow_abbrev=False,
        description="Without --copy or --all: the folders bundles are loaded from and what each holds. With them: "
                    f"copy bundles (checked on the way) into --to, by default {install.user_bundles_dir()}.")
    offline.add_bundles_option(bundles)
    bundles.add_argument("--copy", nargs="+", default=[], metavar="NAME|FOLDER",
                         help="bundles to copy: a name from the folders listed, or a bundle folder (e.g. an export)")
    bundles.add_argument("--all", action="store_true", help="copy every bundle that ships with magenta-bridge")
    bundles.add_argument("--to", type=Path, metavar="DIR", help="folder to copy into (default: your bundle folder)")
    bundles.add_argument("--force", action="store_true", help="replace a bundle of the same name there")
    bundles.set_defaults(func=cmd_bundles)

    devices = subparsers.add_parser(
        "devices", help="where the Max for Live devices are; --copy puts them into Live's User Library",
        allow_abbrev=False)
    devices.add_argument("--copy", action="store_true", help="copy the devices into Live's User Library")
    devices.add_argument("--to", type=offline.existing_folder, metavar="LIBRARY",
                         help=f"Live's User Library, if not at {install.live_user_library()} (Live's Preferences > "
                              "Library shows where it is)")
    devices.add_argument("--force", action="store_true", help="replace devices that differ from these")
    devices.set_defaults(func=cmd_devices)

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
    from bridge.duet.midi import register as register_duet

    register_duet(subparsers)
    from bridge.interop.commands import register as register_interop

    register_interop(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except BrokenPipeError:  # `magenta-bridge models | head` stopped reading: nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python docs, "Note on SIGPIPE"
        return 141
    except USER_ERRORS as exc:
        return _fail(_describe(exc))
    except KeyboardInterrupt:
        return 130
