"""`magenta-bridge duet` and `magenta-bridge follow`: a MIDI keyboard in, a synth out, no DAW.

The command keeps its own transport (beat 0 when it starts, at `--tempo`), stamps every key the
player presses with its beat, and runs the same session and runner the OSC server runs (the
models load in this process, so no server is needed). Answers are played on that transport:
each note is sent at its beat's deadline on the event loop, a cut stops what is left of an
answer and releases what it holds, and Ctrl-C releases everything. The player's own notes pass
through to the synth (`--no-thru` for a keyboard with its own sound); `--click` sounds the beats.
Ports need the `midi` extra (python-rtmidi).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mido

from bridge import install
from bridge.clip import TimeSignature
from bridge.duet import answers
from bridge.duet.events import Answer, Cut, Notice, Timed
from bridge.duet.modes import LEAD, MODES, Mode
from bridge.duet.runner import SessionRunner
from bridge.duet.session import SESSIONS
from bridge.meter import MeterError, parse
from bridge.model_store import ModelStore
from bridge.offline import add_bundles_option, add_param, given_params
from bridge.play import OutputPort, open_port
from bridge.tools import ToolError

DRUM_CHANNEL = 9  # MIDI channel 10
CLICK = (37, 31)  # side stick on the downbeat, sticks on the other beats (General MIDI percussion)


class Player:
    """Answers to a MIDI output at their beats, on the loop. Every note-on it sends gets its
    note-off: at the note's end, at a cut, or at `close`."""

    def __init__(self, out: OutputPort, runner: SessionRunner, channel: int) -> None:
        self.out, self.runner, self.channel = out, runner, channel
        self.pending: dict[int, list[tuple[Timed, asyncio.TimerHandle]]] = {}  # answer -> notes not yet on
        self.sounding: dict[tuple[int, int], asyncio.TimerHandle] = {}  # (answer, pitch) -> its note-off

    def play(self, answer: Answer) -> None:
        clock, loop = self.runner.clock, self.runner.loop
        self.pending[answer.number] = [(n, loop.call_at(clock.wall_at(n.start), self._on, answer.number, n))
                                       for n in answer.notes]

    def _on(self, number: int, note: Timed) -> None:
        key = (number, note.pitch)
        if key in self.sounding:  # the same pitch again before its end: end it first
            self.sounding.pop(key).cancel()
            self._send("note_off", note.pitch)
        self._send("note_on", note.pitch, note.velocity)
        off = self.runner.loop.call_at(self.runner.clock.wall_at(note.end), self._off, key)
        self.sounding[key] = off

    def _off(self, key: tuple[int, int]) -> None:
        if self.sounding.pop(key, None) is not None:
            self._send("note_off", key[1])

    def cut(self, cut: Cut) -> None:
        kept = []
        for note, handle in self.pending.pop(cut.number, []):
            if note.start >= cut.beat:
                handle.cancel()
            else:
                kept.append((note, handle))
        self.pending[cut.number] = kept
        for key in [k for k in self.sounding if k[0] == cut.number]:
            self.sounding.pop(key).cancel()
            self._send("note_off", key[1])

    def close(self) -> None:
        for handles in self.pending.values():
            for _, handle in handles:
                handle.cancel()
        self.pending.clear()
        for key, handle in list(self.sounding.items()):
            handle.cancel()
            self._send("note_off", key[1])
        self.sounding.clear()

    def _send(self, kind: str, pitch: int, velocity: int = 0) -> None:
        self.out.send(mido.Message(kind, channel=self.channel, note=pitch, velocity=velocity))


class PlayAlong:
    """One Duet or Follow session between a MIDI input and an output, on this process's clock."""

    def __init__(self, mode: Mode, params: dict[str, Any], out: OutputPort, store: Any, tempo: float = 120.0,
                 meter: TimeSignature = TimeSignature(4, 4), channel: int = 0, click: bool = False,
                 thru: bool = True, lead: float = LEAD) -> None:
        self.mode, self.out, self.store = mode, out, store
        self.session = SESSIONS[mode.name](mode.resolve(params), meter, tempo)
        drums = mode.tool == "drumify" or self.session.params.get("type") == "drums"
        self.channel = DRUM_CHANNEL if drums else channel
        self.click, self.thru, self.lead = click, thru, lead
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="bridge-duet")
        self.runner: SessionRunner | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Load the model, start the transport at beat 0 and play along until `stop` is set."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, answers.warm_up, self.session, self.store)
        self.runner = SessionRunner(self.session, self.store, self.executor, self._emit, self._failed, self.lead)
        self.runner.sync(0.0, self.session.tempo, True)
        self.player = Player(self.out, self.runner, self.channel)
        ticking = loop.create_task(self._click()) if self.click else None
        try:
            await stop.wait()
        finally:
            if ticking:
                ticking.cancel()
            self.runner.close()
            self.player.close()
            self.executor.shutdown(wait=False, cancel_futures=True)

    def receive(self, msg: mido.Message) -> None:
        """A message from the input port (its own thread): stamped with its beat now, handled on the loop."""
        runner = self.runner
        if runner is None or msg.type not in ("note_on", "note_off"):
            return
        wall = time.monotonic()  # the clock asyncio's loop.time() reads
        velocity = msg.velocity if msg.type == "note_on" else 0
        runner.loop.call_soon_threadsafe(self._note, runner.clock.beat_at(wall), msg, velocity, wall)

    def _note(self, beat: float, msg: mido.Message, velocity: int, wall: float) -> None:
        if self.thru:
            self.out.send(msg)
        self.runner.note(beat, msg.note, velocity, wall)

    def _emit(self, event: Answer | Cut | Notice) -> None:
        if isinstance(event, Cut):
            self.player.cut(event)
            return
        if isinstance(event, Notice):
            print(f"{self.mode.name}: answer {event.number}: {event.text}", file=sys.stderr, flush=True)
            return
        self.player.play(event)
        bar, beat = divmod(event.start, self.session.bar)
        print(f"{self.mode.name}: answer {event.number}, {len(event.notes)} notes from bar {int(bar) + 1} "
              f"beat {beat / self.session.beat + 1:g}", file=sys.stderr, flush=True)

    def _failed(self, exc: Exception) -> None:
        print(f"magenta-bridge: {self.mode.name}: {exc}", file=sys.stderr, flush=True)

    async def _click(self) -> None:
        runner, loop = self.runner, asyncio.get_running_loop()
        beat = float(int(runner.now()) + 1)
        while True:
            await asyncio.sleep(max(0.0, runner.clock.wall_at(beat) - loop.time()))
            pitch = CLICK[0] if beat % self.session.bar < 1e-6 else CLICK[1]
            self.out.send(mido.Message("note_on", channel=DRUM_CHANNEL, note=pitch, velocity=90))
            self.out.send(mido.Message("note_off", channel=DRUM_CHANNEL, note=pitch))
            beat += self.session.beat


def open_input(name: str | None, callback: Any) -> Any:
    try:
        return mido.open_input(name, callback=callback)
    except ImportError:
        raise ToolError("reading a MIDI keyboard needs python-rtmidi: pip install 'magenta-bridge[midi]'") from None
    except OSError as exc:
        raise ToolError(f"cannot open MIDI input {name or '(default)'}: {exc}; "
                        f"inputs: {', '.join(mido.get_input_names()) or 'none'}") from None


def cmd_play_along(mode: Mode, args: argparse.Namespace) -> int:
    if args.list_ports:
        try:
            print("inputs:", ", ".join(mido.get_input_names()) or "none")
            print("outputs:", ", ".join(mido.get_output_names()) or "none")
        except ImportError:
            raise ToolError("listing MIDI ports needs python-rtmidi: pip install 'magenta-bridge[midi]'") from None
        return 0
    if not 1 <= args.tempo <= 999:
        raise ToolError(f"--tempo must be 1-999 bpm, got {args.tempo:g}")
    try:
        meter = parse(args.meter)
        SESSIONS[mode.name](mode.resolve(given_params(mode, args)), meter, args.tempo)
    except MeterError as exc:
        raise ToolError(str(exc)) from None
    store = ModelStore.from_dir(install.bundle_search_path(args.bundles))
    out = open_port(args.out_port)
    along = PlayAlong(mode, given_params(mode, args), out, store, args.tempo, meter, args.channel - 1, args.click,
                      not args.no_thru)

    async def main() -> None:
        keyboard = open_input(args.in_port, along.receive)
        print(f"{mode.name}: playing along on {getattr(keyboard, 'name', args.in_port)} -> "
              f"{getattr(out, 'name', args.out_port)} at {args.tempo:g} bpm in {meter}; Ctrl-C stops",
              file=sys.stderr, flush=True)
        try:
            await along.run(asyncio.Event())  # until Ctrl-C cancels it; run's cleanup releases every note
        finally:
            keyboard.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        out.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    for mode in MODES.values():
        parser = subparsers.add_parser(
            mode.name, help=f"play along from a MIDI keyboard: {mode.help}", description=f"{mode.help} "
            "From a MIDI keyboard (--in) to a synth (--out), on this command's own clock; no server needed.",
            allow_abbrev=False)
        parser.add_argument("--in", dest="in_port", metavar="PORT", help="MIDI input (default: the system's first)")
        parser.add_argument("--out", dest="out_port", metavar="PORT", help="MIDI output (default: the system's first)")
        parser.add_argument("--list-ports", action="store_true", help="list MIDI inputs and outputs and exit")
        parser.add_argument("--tempo", type=float, default=120.0, metavar="BPM", help="the clock's tempo (default 120)")
        parser.add_argument("--meter", default="4/4", metavar="N/D", help="the clock's meter (default 4/4)")
        parser.add_argument("--click", action="store_true", help="sound every beat on the drum channel")
        parser.add_argument("--no-thru", action="store_true", help="do not pass your notes to the output")
        parser.add_argument("--channel", type=int, default=1, choices=range(1, 17), metavar="1-16",
                            help="MIDI channel of the answers (default 1; drums always play on 10)")
        add_bundles_option(parser)
        group = parser.add_argument_group(f"{mode.name} parameters")
        for param in mode.params:
            add_param(group, param)
        parser.set_defaults(func=lambda args, mode=mode: cmd_play_along(mode, args))
