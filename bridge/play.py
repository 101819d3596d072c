"""Hear a result without a DAW: play a MIDI file on a MIDI output port, or render it to WAV.

`magenta-bridge play FILE` plays a file; `magenta-bridge play --tool continue -i x.mid ...`
runs a tool offline first and plays its variations one after another. Every message is sent
at an absolute deadline from one start time, so sleep jitter never accumulates over a long
clip, and notes still sounding when playback stops (Ctrl-C) are switched off. `--preview
out.wav` renders through FluidSynth instead of a port. Ports need the `midi` extra
(python-rtmidi); nothing here is imported by the server.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import mido

from bridge import offline
from bridge.saving import is_drums
from bridge.tools import TOOLS, ToolError

# Where Debian, Ubuntu, Fedora, Arch and Homebrew put General MIDI soundfonts, best first.
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2",
              "/usr/share/soundfonts/default.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/sounds/sf2/TimGM6mb.sf2", "/opt/homebrew/share/soundfonts/default.sf2")


class OutputPort(Protocol):
    def send(self, msg: mido.Message) -> None: ...


def with_tempo(mid: mido.MidiFile, bpm: float) -> mido.MidiFile:
    """A copy of the file at one constant tempo: every tempo change goes, the meter stays."""
    out = mido.MidiFile(type=mid.type, ticks_per_beat=mid.ticks_per_beat)
    for index, track in enumerate(mid.tracks):
        copy = mido.MidiTrack()
        if index == 0:
            copy.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
        carry = 0  # delta time of dropped tempo messages moves onto the next message
        for msg in track:
            if msg.type == "set_tempo":
                carry += msg.time
                continue
            copy.append(msg.copy(time=msg.time + carry))
            carry = 0
        out.tracks.append(copy)
    return out


def schedule(mid: mido.MidiFile) -> list[tuple[float, mido.Message]]:
    """(seconds from the start, message) for every channel message, following the tempo map."""
    events, now = [], 0.0
    for msg in mid:  # mido merges the tracks and turns ticks into seconds with the tempo map
        now += msg.time
        if not msg.is_meta and msg.type != "sysex":
            events.append((now, msg.copy(time=0)))
    return events


def play(events: list[tuple[float, mido.Message]], port: OutputPort,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Send each message at its time; on any interruption switch off the notes left sounding."""
    sounding: set[tuple[int, int]] = set()
    start = clock()
    try:
        for at, msg in events:
            wait = start + at - clock()
            if wait > 0:
                sleep(wait)
            port.send(msg)
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.add((msg.channel, msg.note))
            elif msg.type in ("note_on", "note_off"):
                sounding.discard((msg.channel, msg.note))
    finally:
        for channel, note in sorted(sounding):
            port.send(mido.Message("note_off", channel=channel, note=note))


def find_soundfont(explicit: str | Path | None = None) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    return next((Path(p) for p in SOUNDFONTS if Path(p).is_file()), None)


def render_wav(midi_path: str | Path, wav_path: str | Path, soundfont: str | Path | None = None) -> Path:
    """Render a MIDI file to a 44.1 kHz WAV with the FluidSynth command line."""
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise ToolError("--preview needs FluidSynth: install it (apt install fluidsynth, brew install fluid-synth)")
    font = find_soundfont(soundfont)
    if font is None or not font.is_file():
        raise ToolError(f"no soundfont found{f' at {font}' if font else ''}; pass --soundfont FILE.sf2 "
                        "(apt install fluid-soundfont-gm)")
    done = subprocess.run([fluidsynth, "-ni", "-g", "0.6", "-r", "44100", "-F", str(wav_path), str(font),
                           str(midi_path)], capture_output=True, text=True, timeout=600)
    if done.returncode or not Path(wav_path).is_file():
        raise ToolError(f"fluidsynth failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return Path(wav_path)


def open_port(name: str | None) -> Any:
    try:
        return mido.open_output(name)
    except ImportError:
        raise ToolError("playing on a MIDI port needs python-rtmidi: pip install 'magenta-bridge[midi]'") from None
    except OSError as exc:
        raise ToolError(f"cannot open MIDI output {name or '(default)'}: {exc}; "
                        f"ports: {', '.join(mido.get_output_names()) or 'none'}") from None


# --- the `play` command ---------------------------------------------------------------------

def _tool_result(name: str, argv: list[str], bundles: Path | None, folder: Path) -> Path:
    """Run a tool offline on the options after `--tool NAME`; its clips, in sequence, as a file."""
    from bridge.midi_io import write_midi

    tool = TOOLS.get(name)
    if tool is None:
        raise ToolError(f"no tool {name!r}; tools: {', '.join(TOOLS)}")
    parser = argparse.ArgumentParser(prog=f"magenta-bridge play --tool {name}", description=tool.help)
    parser.add_argument("-i", "--input", action="extend", nargs="+", default=[], metavar="FILE",
                        required=tool.min_inputs > 0, help="input MIDI file(s)")
    offline.add_track_option(parser)
    parser.add_argument("-o", "--output", metavar="OUT.mid", help="also keep the result, its clips in sequence")
    for param in tool.params:
        offline.add_param(parser, param)
    args = parser.parse_args(argv)
    given = offline.given_params(tool, args)
    path = Path(args.output) if args.output else folder / f"{tool.name}.mid"
    path.parent.mkdir(parents=True, exist_ok=True)
    results = offline.run(tool, given, args.input, args.track, bundles)
    return write_midi(path, results, sequence=True, drums=is_drums(tool, given), name=tool.name)


def cmd_play(args: argparse.Namespace) -> int:
    if args.list_ports:
        try:
            names = mido.get_output_names()
        except ImportError:
            raise ToolError("listing MIDI ports needs python-rtmidi: pip install 'magenta-bridge[midi]'") from None
        print("\n".join(names) if names else "no MIDI output ports")
        return 0
    if (args.file is None) == (args.tool is None) or args.tool == []:
        raise ToolError("play takes a MIDI FILE or --tool NAME [tool options], one of the two")
    if args.tempo is not None and not 1 <= args.tempo <= 999:
        raise ToolError(f"--tempo must be 1-999 bpm, got {args.tempo:g}")
    with tempfile.TemporaryDirectory(prefix="magenta-bridge-play-") as folder:
        path = Path(args.file) if args.file else _tool_result(args.tool[0], args.tool[1:], args.bundles, Path(folder))
        try:
            mid = mido.MidiFile(path)
        except (EOFError, ValueError, KeyError, IndexError) as exc:
            raise ToolError(f"{path}: not a readable MIDI file ({exc})") from None
        if args.tempo is not None:
            mid = with_tempo(mid, args.tempo)
        if args.preview:
            source = path
            if args.tempo is not None:
                source = Path(folder) / "retimed.mid"
                mid.save(source)
            print(f"preview: {render_wav(source, args.preview, args.soundfont)}")
            return 0
        events = schedule(mid)
        port = open_port(args.port)
        print(f"playing {path.name} on {getattr(port, 'name', args.port)}: {len(events)} messages, "
              f"{events[-1][0] if events else 0:.1f} s", file=sys.stderr)
        try:
            play(events, port)
        finally:
            port.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "play", help="play a MIDI file or a tool's result on a MIDI port, or render it to WAV",
        description="Play a MIDI file, or run a tool and play its variations one after another. "
                    "Options for play come before --tool; everything after --tool NAME goes to the tool.")
    parser.add_argument("file", nargs="?", metavar="FILE", help="MIDI file to play")
    parser.add_argument("--port", help="MIDI output port name (default: the system's first); see --list-ports")
    parser.add_argument("--list-ports", action="store_true", help="list MIDI output ports and exit")
    parser.add_argument("--tempo", type=float, metavar="BPM", help="play at this tempo instead of the file's")
    parser.add_argument("--preview", metavar="OUT.wav", help="render to a WAV file with FluidSynth instead of playing")
    parser.add_argument("--soundfont", metavar="SF2", help="soundfont for --preview (default: a General MIDI one installed)")
    offline.add_bundles_option(parser)
    parser.add_argument("--tool", nargs=argparse.REMAINDER, metavar="NAME ...",
                        help="run this tool offline with the options that follow, then play the result")
    parser.set_defaults(func=cmd_play)
