"""A stand-in for AbletonOSC in front of a simulated Live set, faithful where the bridge depends on it.

Each behaviour follows AbletonOSC's code (ideoforms/AbletonOSC, master of Nov 2025: manager.py,
abletonosc/osc_server.py, handler.py, clip.py, clip_slot.py, song.py, track.py), its issues, or
the Live Object Model (LOM) reference; the comment at each names the source. Not simulated:
listeners, wildcard addresses, bundles' timing, and the argument orders of versions before
18 Nov 2023 (`removed` makes addresses unknown, as in older versions).
"""
from __future__ import annotations

import socket
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

# macOS refuses to send a UDP datagram over net.inet.udp.maxdgram, 9,216 bytes by default; a
# dense clip's get/notes reply fails there with "OSError: [Errno 40] Message too long"
# (AbletonOSC issue #88). Live runs on macOS or Windows; this stand-in takes the macOS limit.
MAX_DATAGRAM = 9216
EMSGSIZE_MACOS = 40
TICK = 0.1  # Manager.tick is scheduled every ~100 ms and calls OSCServer.process once


def boost_args(call: str, kinds: str, values: Sequence[Any]) -> None:
    """Refuse arguments Live's boost.python bindings would not convert, as boost does.

    boost.python's builtin converters (boostorg/python src/converter/builtin_converters.cpp,
    Python 3 branch): an int parameter ('i') takes only ints (bools are ints), a double ('f')
    ints and floats, a bool ('b') ints and None, a std::string ('s') str. Anything else raises
    Boost.Python.ArgumentError, a TypeError, whose text begins as below.
    """
    accepts = {"i": lambda v: isinstance(v, int), "f": lambda v: isinstance(v, (int, float)),
               "b": lambda v: v is None or isinstance(v, int), "s": lambda v: isinstance(v, str)}
    if len(values) != len(kinds) or not all(accepts[k](v) for k, v in zip(kinds, values)):
        types = ", ".join(type(v).__name__ for v in values)
        raise TypeError(f"Python argument types in {call}({types}) did not match C++ signature")


@dataclass
class LiveClip:
    """A Session clip as the LOM describes Clip: times in beats of absolute clip time.

    `length` makes a new clip's loop (loop_start to loop_start + length); start and end markers
    default to the loop. What `/live/clip/get/length` answers is `live_length()`.
    """

    length: float
    notes: list[tuple] = field(default_factory=list)  # (pitch, start, duration, velocity, mute)
    name: str = ""
    color: int = 0
    looping: bool = True
    loop_start: float = 0.0
    loop_end: float | None = None
    start_marker: float | None = None
    end_marker: float | None = None

    def __post_init__(self) -> None:
        if self.loop_end is None:
            self.loop_end = self.loop_start + self.length
        if self.start_marker is None:
            self.start_marker = self.loop_start
        if self.end_marker is None:
            self.end_marker = self.loop_end

    def live_length(self) -> float:
        # LOM Clip.length: "For looped clips: loop length in beats. Otherwise it's the distance
        # in beats from start to end marker."
        return self.loop_end - self.loop_start if self.looping else self.end_marker - self.start_marker

    def get_notes_extended(self, from_pitch: int, pitch_span: int, from_time: float, time_span: float) -> list[tuple]:
        # LOM Clip.get_notes_extended: the notes "that have their start times in the given area";
        # Live hands them back sorted by pitch, then time (AbletonOSC tests/test_clip.py).
        return sorted((int(p), float(s), float(d), float(v), bool(m)) for p, s, d, v, m in self.notes
                      if from_pitch <= p < from_pitch + pitch_span and from_time <= s < from_time + time_span)


@dataclass
class LiveTrack:
    midi: bool = True
    slots: list[LiveClip | None] = field(default_factory=lambda: [None] * 8)


class FakeAbleton:
    """AbletonOSC on a free loopback port, replying to `reply_port` (11001 in Live) of the sender's IP.

    `received` logs (address, args, datagram size, tick); `replies` (address, size) of what it
    sent; `errors` the /live/error texts; `ticks` counts ticks. `fail` maps an address to an
    error its handler raises; `removed` holds addresses this version does not know;
    `on_message(address, args)` runs before each message is handled, and may `interject` another
    program's datagram to be handled right after it.
    """

    def __init__(self, reply_port: int, tracks: list[LiveTrack] | None = None, tempo: float = 120.0,
                 signature: tuple[int, int] = (4, 4), tick: float = TICK) -> None:
        self.reply_port = reply_port
        self.tracks = tracks if tracks is not None else [LiveTrack()]
        self.tempo = tempo
        self.signature = signature
        self.tick = tick
        self.ticks = 0
        self.received: list[tuple[str, list, int, int]] = []
        self.replies: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self.fail: dict[str, str] = {}
        self.removed: set[str] = set()
        self.on_message: Callable[[str, list], None] | None = None
        self.last_sender = "127.0.0.1"
        self._interjected: list[tuple[bytes, tuple]] = []
        self._handlers = self._make_handlers()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)  # OSCServer: socket.setblocking(0)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self) -> "FakeAbleton":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def interject(self, data: bytes, ip: str) -> None:
        """A datagram from another program at `ip`, arriving between the current one and the next."""
        self._interjected.append((data, (ip, 0)))

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self.ticks += 1
            self._process()

    def _process(self) -> None:
        """One tick, as OSCServer.process: handle queued datagrams in order until none is left.

        Any exception ends the tick; the datagrams behind it wait for the next one. An OSError
        (a reply too big to send) is logged as "Socket error: <traceback>", any other as "Error
        handling OSC message: <exception>"; the log handler relays errors as /live/error."""
        try:
            while True:
                data, addr = self._interjected.pop(0) if self._interjected else self.sock.recvfrom(65536)
                # process(): "Update the default reply address to the most recent client."
                self.last_sender = addr[0]
                for timed in OscPacket(data).messages:
                    self._handle(timed.message.address, list(timed.message.params), addr, len(data))
        except BlockingIOError:
            pass
        except OSError:
            self._error(f"Socket error: {traceback.format_exc()}")
        except Exception as exc:
            self._error(f"Error handling OSC message: {exc}")

    def _error(self, text: str) -> None:
        # manager.py LiveOSCErrorLogHandler: every logged error goes to /live/error, sent to the
        # default reply address (the most recent sender's IP, port 11001); a failed send is ignored.
        self.errors.append(text)
        try:
            self.sock.sendto(self._datagram("/live/error", (text,)), (self.last_sender, self.reply_port))
        except OSError:
            pass

    @staticmethod
    def _datagram(address: str, values: Sequence[Any]) -> bytes:
        builder = OscMessageBuilder(address)
        for value in values:
            builder.add_arg(value)  # OSCServer.send infers types: bool T/F, int i, float f, str s
        return builder.build().dgram

    def _handle(self, address: str, args: list, addr: tuple, size: int) -> None:
        self.received.append((address, args, size, self.ticks))
        if self.on_message is not None:
            self.on_message(address, args)
        handler = None if address in self.removed else self._handlers.get(address)
        if handler is None:
            self._error(f"Unknown OSC address: {address}")  # process_message logs it and goes on
            return
        if address in self.fail:
            raise RuntimeError(self.fail[address])
        reply = handler(args)
        if reply is not None:  # process_message: replies go to the sender's IP, response port
            data = self._datagram(address, reply)
            if len(data) > MAX_DATAGRAM:
                raise OSError(EMSGSIZE_MACOS, "Message too long")
            self.sock.sendto(data, (addr[0], self.reply_port))
            self.replies.append((address, len(data)))

    def clip(self, track: Any, slot: Any) -> LiveClip | None:
        # Callbacks cast the ids with int(): "to support clients such as TouchOSC" (clip.py).
        return self.tracks[int(track)].slots[int(slot)]

    def _make_handlers(self) -> dict[str, Callable[[list], tuple | None]]:
        def song_property(name: str) -> Callable[[list], tuple]:
            def get(a: list) -> tuple:
                value = {"tempo": self.tempo, "signature_numerator": self.signature[0],
                         "signature_denominator": self.signature[1], "is_playing": False}[name]
                return (value, *a)  # handler._get_property returns (value, *params): extra arguments echo
            return get

        def clip_property(name: str) -> Callable[[list], tuple]:
            def get(a: list) -> tuple:
                clip = self.clip(a[0], a[1])
                if clip is None:  # the slot's clip is None: getattr fails
                    raise AttributeError(f"'NoneType' object has no attribute '{name}'")
                value = (self.tracks[int(a[0])].midi if name == "is_midi_clip" else
                         clip.live_length() if name == "length" else getattr(clip, name))
                return (int(a[0]), int(a[1]), value, *a[2:])  # clip_callback prepends track, clip
            return get

        def set_clip_property(name: str, kind: str) -> Callable[[list], None]:
            def set_(a: list) -> None:
                clip = self.clip(a[0], a[1])
                if clip is None:
                    raise AttributeError(f"'NoneType' object has no attribute '{name}'")
                boost_args(f"Clip.{name}", kind, a[2:3])
                setattr(clip, name, a[2])
            return set_

        handlers: dict[str, Callable[[list], tuple | None]] = {
            "/live/test": lambda a: ("ok",),
            "/live/song/get/num_tracks": lambda a: (len(self.tracks),),  # song.py: a lambda, no echo
            "/live/song/get/num_scenes": lambda a: (len(self.tracks[0].slots),),
            "/live/track/get/has_midi_input": lambda a: (int(a[0]), self.tracks[int(a[0])].midi, *a[1:]),
            "/live/clip_slot/get/has_clip": lambda a: (int(a[0]), int(a[1]), self.clip(a[0], a[1]) is not None, *a[2:]),
            "/live/clip_slot/create_clip": self._create_clip,
            "/live/clip/add/notes": self._add_notes,
            "/live/clip/get/notes": self._get_notes,
        }
        for name in ("tempo", "signature_numerator", "signature_denominator", "is_playing"):
            handlers[f"/live/song/get/{name}"] = song_property(name)
        for name in ("is_midi_clip", "length", "name", "color", "looping", "loop_start", "loop_end",
                     "start_marker", "end_marker"):
            handlers[f"/live/clip/get/{name}"] = clip_property(name)
        for name, kind in (("name", "s"), ("color", "i"), ("looping", "b"), ("loop_start", "f"), ("loop_end", "f"),
                           ("start_marker", "f"), ("end_marker", "f")):
            handlers[f"/live/clip/set/{name}"] = set_clip_property(name, kind)
        return handlers

    def _create_clip(self, args: list) -> None:
        track = self.tracks[int(args[0])]
        boost_args("ClipSlot.create_clip", "f", args[2:])
        if not track.midi:
            raise RuntimeError("Creating MIDI clips is only possible on MIDI tracks")
        if track.slots[int(args[1])] is not None:
            raise RuntimeError("Clip slot already has a clip")
        if float(args[2]) <= 0:
            raise RuntimeError("Clip length must be greater than 0")
        track.slots[int(args[1])] = LiveClip(float(args[2]))

    def _add_notes(self, args: list) -> None:
        # clip.py clip_add_notes: five values a note into Live.Clip.MidiNoteSpecification (pitch
        # int, start_time, duration and velocity double, mute bool), then clip.add_new_notes.
        values, notes = args[2:], []
        for offset in range(0, len(values), 5):
            pitch, start, duration, velocity, mute = values[offset:offset + 5]
            boost_args("MidiNoteSpecification", "iffb", (pitch, start, duration, mute))
            boost_args("MidiNoteSpecification", "f", (velocity,))
            notes.append((pitch, float(start), float(duration), float(velocity), bool(mute)))
        clip = self.clip(args[0], args[1])
        if clip is None:
            raise AttributeError("'NoneType' object has no attribute 'add_new_notes'")
        clip.notes += notes

    def _get_notes(self, args: list) -> tuple:
        # clip.py clip_get_notes: 4 arguments (pitch_start, pitch_span, time_start, time_span,
        # this order since 18 Nov 2023) or none, meaning (0, 127, -8192, 16384): pitch span 127
        # leaves out pitch 127 (AbletonOSC issue #190).
        params = args[2:]
        if len(params) == 4:
            pitch_start, pitch_span, time_start, time_span = params
        elif not params:
            pitch_start, pitch_span, time_start, time_span = 0, 127, -8192, 16384
        else:
            raise ValueError("Invalid number of arguments for /clip/get/notes. Either 0 or 4 arguments must be passed.")
        clip = self.clip(args[0], args[1])
        if clip is None:
            raise AttributeError("'NoneType' object has no attribute 'get_notes_extended'")
        boost_args("Clip.get_notes_extended", "iiff", (pitch_start, pitch_span, time_start, time_span))
        notes = clip.get_notes_extended(pitch_start, pitch_span, time_start, time_span)
        return (int(args[0]), int(args[1]), *(value for note in notes for value in note))
