"""An AbletonOSC-compatible peer for tests: a simulated Live set behind AbletonOSC's addresses.

It follows AbletonOSC's documented behaviour, quirks included: it polls its socket on a tick
(every 100 ms in Live; `tick` here) and handles what arrived in order; a query is answered on
the same address, echoing the track and slot, to the sender's IP at a fixed reply port (11001
in Live; `reply_port` here); values are typed as python-osc infers them (bools as T/F); a
failed query or write sends only `/live/error <text>`, never a reply.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket


@dataclass
class LiveClip:
    length: float
    notes: list[tuple] = field(default_factory=list)  # (pitch, start, duration, velocity, mute)
    name: str = ""
    color: int = 0
    looping: bool = True
    loop_start: float = 0.0
    loop_end: float | None = None

    def __post_init__(self) -> None:
        if self.loop_end is None:
            self.loop_end = self.length


@dataclass
class LiveTrack:
    midi: bool = True
    slots: list[LiveClip | None] = field(default_factory=lambda: [None] * 8)


class FakeAbleton:
    """The peer on a free loopback port; `received` logs (address, args, datagram size)."""

    def __init__(self, reply_port: int, tracks: list[LiveTrack] | None = None, tempo: float = 120.0,
                 signature: tuple[int, int] = (4, 4), tick: float = 0.01) -> None:
        self.reply_port = reply_port
        self.tracks = tracks if tracks is not None else [LiveTrack()]
        self.tempo = tempo
        self.signature = signature
        self.tick = tick
        self.received: list[tuple[str, list, int]] = []
        self.fail: dict[str, str] = {}  # address -> error text raised when it is handled
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self) -> "FakeAbleton":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _poll(self) -> None:
        while not self._stop.is_set():
            time.sleep(self.tick)
            while True:
                try:
                    data, addr = self.sock.recvfrom(65536)
                except BlockingIOError:
                    break
                for timed in OscPacket(data).messages:
                    self._handle(timed.message.address, list(timed.message.params), addr, len(data))

    def _send(self, address: str, values: tuple, ip: str) -> None:
        builder = OscMessageBuilder(address)
        for value in values:
            builder.add_arg(value)  # inferred types, as AbletonOSC sends them
        self.sock.sendto(builder.build().dgram, (ip, self.reply_port))

    def _handle(self, address: str, args: list, addr: tuple, size: int) -> None:
        self.received.append((address, args, size))
        handler = self._handlers().get(address)
        if handler is None:
            self._send("/live/error", (f"Unknown OSC address: {address}",), addr[0])
            return
        try:
            if address in self.fail:
                raise RuntimeError(self.fail[address])
            reply = handler(args)
        except Exception as exc:
            self._send("/live/error", (f"Error handling OSC message: {exc}",), addr[0])
            return
        if reply is not None:
            self._send(address, reply, addr[0])

    def clip(self, track: Any, slot: Any) -> LiveClip:
        found = self.tracks[int(track)].slots[int(slot)]
        if found is None:
            raise AttributeError("'NoneType' object has no attribute 'length'")
        return found

    def _handlers(self) -> dict[str, Callable[[list], tuple | None]]:
        def clip_property(name: str) -> Callable[[list], tuple]:
            return lambda a: (int(a[0]), int(a[1]), getattr(self.clip(a[0], a[1]), name))

        def set_clip_property(name: str) -> Callable[[list], None]:
            return lambda a: setattr(self.clip(a[0], a[1]), name, a[2])

        handlers: dict[str, Callable[[list], tuple | None]] = {
            "/live/test": lambda a: ("ok",),
            "/live/song/get/tempo": lambda a: (self.tempo,),
            "/live/song/get/signature_numerator": lambda a: (self.signature[0],),
            "/live/song/get/signature_denominator": lambda a: (self.signature[1],),
            "/live/song/get/num_tracks": lambda a: (len(self.tracks),),
            "/live/song/get/num_scenes": lambda a: (len(self.tracks[0].slots),),
            "/live/track/get/has_midi_input": lambda a: (int(a[0]), self.tracks[int(a[0])].midi),
            "/live/clip_slot/get/has_clip": lambda a: (int(a[0]), int(a[1]),
                                                        self.tracks[int(a[0])].slots[int(a[1])] is not None),
            "/live/clip_slot/create_clip": self._create_clip,
            "/live/clip/add/notes": self._add_notes,
            "/live/clip/get/notes": self._get_notes,
            "/live/clip/get/is_midi_clip": lambda a: (int(a[0]), int(a[1]), bool(self.clip(a[0], a[1]) and
                                                                                 self.tracks[int(a[0])].midi)),
        }
        for name in ("length", "name", "color", "looping", "loop_start", "loop_end"):
            handlers[f"/live/clip/get/{name}"] = clip_property(name)
        for name in ("name", "color", "looping", "loop_start", "loop_end"):
            handlers[f"/live/clip/set/{name}"] = set_clip_property(name)
        return handlers

    def _create_clip(self, args: list) -> None:
        track = self.tracks[int(args[0])]
        if not track.midi:
            raise RuntimeError("Creating MIDI clips is only possible on MIDI tracks")
        if track.slots[int(args[1])] is not None:
            raise RuntimeError("Clip slot already has a clip")
        if float(args[2]) <= 0:
            raise RuntimeError("Clip length must be greater than 0")
        track.slots[int(args[1])] = LiveClip(float(args[2]))

    def _add_notes(self, args: list) -> None:
        clip = self.clip(args[0], args[1])
        values = args[2:]
        if len(values) % 5:
            raise ValueError("not enough values to unpack")
        clip.notes += [tuple(values[i:i + 5]) for i in range(0, len(values), 5)]

    def _get_notes(self, args: list) -> tuple:
        notes = sorted(self.clip(args[0], args[1]).notes, key=lambda n: (n[0], n[1]))  # Live sorts by pitch
        return (int(args[0]), int(args[1]), *(value for note in notes for value in note))
