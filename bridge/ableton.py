"""Write result clips into Ableton Live, and read clips from it, through AbletonOSC.

AbletonOSC is a Live remote script: it takes OSC on UDP 11000 and answers on port 11001 of the
sender's IP. That reply port is fixed, so only one program per machine can hear its answers;
the bridge binds it only when a request first asks for Live. Its quirks shape this module:

- A query is answered on the address it was sent to, echoing the track and slot it named, so
  replies are matched by address and those leading arguments.
- A failed query sends nothing but `/live/error <text>`, which names no request. So every
  query has a timeout, operations run one at a time, and an error that arrives during an
  operation belongs to it.
- Writes are never answered, so each clip written ends with a cheap query: AbletonOSC handles
  messages in order, so an error from a write arrives before that query's answer.
- Messages are polled every ~100 ms from one socket read of at most 64 KB; note lists travel in
  chunks far under the 8 KB that the AbletonOSC docs advise.
"""
from __future__ import annotations

import asyncio
import logging
from numbers import Integral, Real
from typing import Any, Sequence

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bridge.clip import Clip, Note, TimeSignature
from bridge.protocol import is_loopback
from bridge.tools import ToolError

log = logging.getLogger(__name__)

DEFAULT_PORT = 11000
DEFAULT_REPLY_PORT = 11001
DEFAULT_TIMEOUT = 2.0  # seconds per query: AbletonOSC polls every ~100 ms, Live may be busy
NOTES_PER_CHUNK = 200  # 5 values (21 bytes) a note: about 4.3 KB a message
MAX_DATAGRAM = 8192


class AbletonError(ToolError):
    """AbletonOSC reported an error (`live_error`) or did not answer (`live_timeout`)."""

    code = "live_error"


def message(address: str, *args: Any) -> bytes:
    """One message typed as AbletonOSC expects: bools as T/F (note mute, looping), ints, floats, text."""
    builder = OscMessageBuilder(address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(arg, OscMessageBuilder.ARG_TYPE_TRUE if arg else OscMessageBuilder.ARG_TYPE_FALSE)
        elif isinstance(arg, Integral):
            builder.add_arg(int(arg), OscMessageBuilder.ARG_TYPE_INT)
        elif isinstance(arg, Real):
            builder.add_arg(float(arg), OscMessageBuilder.ARG_TYPE_FLOAT)
        elif isinstance(arg, str):
            builder.add_arg(arg, OscMessageBuilder.ARG_TYPE_STRING)
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to AbletonOSC")
    return builder.build().dgram


def note_chunks(track: int, slot: int, notes: Sequence[Note]) -> list[bytes]:
    """`/live/clip/add/notes t s (pitch start duration velocity mute)*` messages, each under 8 KB."""
    out = []
    for i in range(0, len(notes), NOTES_PER_CHUNK):
        values: list[Any] = []
        for n in notes[i:i + NOTES_PER_CHUNK]:
            values += [n.pitch, float(n.start), float(n.duration), n.velocity, bool(n.mute)]
        out.append(message("/live/clip/add/notes", track, slot, *values))
    return out


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, owner: "AbletonOSC") -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception as exc:  # python-osc raises several kinds on garbage
            log.warning("dropped undecodable datagram from %s: %s", addr, exc)
            return
        for msg in messages:
            self.owner._received(msg.address, list(msg.params))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error talking to AbletonOSC: %s", exc)


class AbletonOSC:
    """An AbletonOSC peer: `host:port` takes requests, replies arrive on `reply_port`.

    Nothing is bound until the first operation, so a bridge that never touches Live leaves
    port 11001 to other programs. Use from one event loop.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, reply_port: int = DEFAULT_REPLY_PORT,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.reply_port = reply_port
        self.timeout = timeout
        self._transport: asyncio.DatagramTransport | None = None
        self._lock: asyncio.Lock | None = None
        self._waiting: list[tuple[str, tuple, asyncio.Future]] = []
        self._errors: list[str] = []

    async def _open(self) -> None:
        if self._transport is None:
            local = "127.0.0.1" if is_loopback(self.host) else "0.0.0.0"
            try:
                self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _Receiver(self), local_addr=(local, self.reply_port))
            except OSError as exc:
                raise AbletonError(f"cannot listen for AbletonOSC replies on udp port {self.reply_port}: "
                                   f"{exc.strerror or exc}") from None

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _received(self, address: str, args: list) -> None:
        if address == "/live/error":
            text = " ".join(str(a) for a in args)
            log.warning("AbletonOSC error: %s", text)
            self._errors.append(text)
            for _, _, future in self._waiting:
                if not future.done():
                    future.set_exception(AbletonError(f"AbletonOSC: {text}"))
            return
        for wanted, echoed, future in self._waiting:
            if wanted == address and tuple(args[:len(echoed)]) == echoed and not future.done():
                future.set_result(args[len(echoed):])
                return
        log.debug("AbletonOSC reply %s matched no query", address)

    def send(self, address: str, *args: Any) -> None:
        self._send(message(address, *args))

    def _send(self, data: bytes) -> None:
        assert self._transport is not None, "call inside an operation"
        self._transport.sendto(data, (self.host, self.port))

    async def query(self, address: str, *args: Any) -> list:
        """Send a query and return the reply's values after the echoed arguments."""
        if self._errors:  # an error from an earlier write of this operation
            raise AbletonError(f"AbletonOSC: {self._errors[0]}")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        entry = (address, tuple(args), future)
        self._waiting.append(entry)
        try:
            self.send(address, *args)
            return await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError:
            raise AbletonError(f"AbletonOSC did not answer {address} within {self.timeout:g} s; is Live running "
                               f"with AbletonOSC listening on {self.host}:{self.port}?", "live_timeout") from None
        finally:
            self._waiting.remove(entry)

    async def _operation(self) -> asyncio.Lock:
        await self._open()
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # Reading -----------------------------------------------------------------------------

    async def _song_context(self) -> tuple[float, TimeSignature]:
        tempo = (await self.query("/live/song/get/tempo"))[0]
        numerator = (await self.query("/live/song/get/signature_numerator"))[0]
        denominator = (await self.query("/live/song/get/signature_denominator"))[0]
        return float(tempo), TimeSignature(int(numerator), int(denominator))

    async def song_context(self) -> Clip:
        """An empty clip carrying the set's tempo and meter, for tools that start from nothing."""
        async with await self._operation():
            self._errors.clear()
            tempo, meter = await self._song_context()
            return Clip((), meter.beats_per_bar, tempo, meter)

    async def _check_slot(self, track: int, slot: int) -> None:
        tracks = int((await self.query("/live/song/get/num_tracks"))[0])
        scenes = int((await self.query("/live/song/get/num_scenes"))[0])
        if not 0 <= track < tracks:
            raise AbletonError(f"track {track} does not exist; the set has tracks 0-{tracks - 1}")
        if not 0 <= slot < scenes:
            raise AbletonError(f"slot {slot} does not exist; the set has slots 0-{scenes - 1}")

    async def read_clips(self, track: int, slot: int, count: int = 1) -> list[Clip]:
        """The MIDI clips in `count` slots from `slot` on, with the set's tempo and meter."""
        async with await self._operation():
            self._errors.clear()
            await self._check_slot(track, slot + count - 1)
            tempo, meter = await self._song_context()
            return [await self._read_clip(track, s, tempo, meter) for s in range(slot, slot + count)]

    async def _read_clip(self, track: int, slot: int, tempo: float, meter: TimeSignature) -> Clip:
        if not (await self.query("/live/clip_slot/get/has_clip", track, slot))[0]:
            raise AbletonError(f"track {track} slot {slot} holds no clip")
        if not (await self.query("/live/clip/get/is_midi_clip", track, slot))[0]:
            raise AbletonError(f"track {track} slot {slot} holds an audio clip, not a MIDI clip")
        length = float((await self.query("/live/clip/get/length", track, slot))[0])
        name = (await self.query("/live/clip/get/name", track, slot))[0] or ""
        values = await self.query("/live/clip/get/notes", track, slot)
        notes = []
        for i in range(0, len(values) - 4, 5):
            pitch, start, duration, velocity, mute = values[i:i + 5]
            if start >= 0:  # Live keeps notes before the clip start; a clip here starts at 0
                notes.append(Note(int(pitch), float(start), float(duration),
                                  max(1, min(127, round(velocity))), bool(mute)))
        notes.sort(key=lambda n: (n.start, n.pitch))
        return Clip(tuple(notes), length, tempo, meter, None, str(name)).validate()

    # Writing -----------------------------------------------------------------------------

    async def write_clips(self, track: int, slot: int, clips: Sequence[Clip], color: int) -> list[int]:
        """Put each clip in the next empty slot from `slot` on; return the slots used.

        Nothing is written unless there are enough empty slots for every clip.
        """
        async with await self._operation():
            self._errors.clear()
            await self._check_slot(track, slot)
            if not (await self.query("/live/track/get/has_midi_input", track))[0]:
                raise AbletonError(f"track {track} is not a MIDI track")
            scenes = int((await self.query("/live/song/get/num_scenes"))[0])
            free = []
            for s in range(slot, scenes):
                if len(free) == len(clips):
                    break
                if not (await self.query("/live/clip_slot/get/has_clip", track, s))[0]:
                    free.append(s)
            if len(free) < len(clips):
                raise AbletonError(f"track {track} has {len(free)} empty slot(s) from slot {slot} on; "
                                   f"{len(clips)} needed (add scenes or pick another slot)")
            for s, clip in zip(free, clips):
                await self._write_clip(track, s, clip, color)
            return free

    async def _write_clip(self, track: int, slot: int, clip: Clip, color: int) -> None:
        self.send("/live/clip_slot/create_clip", track, slot, float(clip.length))
        for data in note_chunks(track, slot, clip.sorted_notes()):
            self._send(data)
        self.send("/live/clip/set/name", track, slot, clip.name)
        self.send("/live/clip/set/color", track, slot, color)
        self.send("/live/clip/set/loop_start", track, slot, 0.0)
        self.send("/live/clip/set/loop_end", track, slot, float(clip.length))
        self.send("/live/clip/set/looping", track, slot, True)
        await self.query("/live/clip/get/length", track, slot)
