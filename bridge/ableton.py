"""Write result clips into Ableton Live, and read clips from it, through AbletonOSC.

AbletonOSC (github.com/ideoforms/AbletonOSC) is a Live remote script taking OSC on UDP 11000.
The bridge needs AbletonOSC from 18 Nov 2023 or later (`REQUIRED`). In its history: replies that
echo the track and slot came on 17 Dec 2022 (commit 71dfa85), `/live/error` on 7 Jan 2023
(e4cea70), an answer for a clip without notes on 11 Feb 2023 (017177d), and on 18 Nov 2023 the
clip start marker (01c76d6) and the four-argument `/live/clip/get/notes` in its final order,
pitch first (39e3934; 8463c07, half an hour earlier, had time first). Its code
(abletonosc/osc_server.py, manager.py, handler.py, clip.py) shapes this module:

- It reads its socket once per ~100 ms tick (`Manager.tick`) and handles every queued message in
  order; a message that raises ends the tick early, the rest wait for the next one. A round trip
  costs a tick, so the bridge sends each stage's independent queries together.
- A query is answered on its own address, to port 11001 of the sender's IP, echoing the track
  and slot it named: replies are matched by address and that echo. The bridge binds 11001 only
  when a request first asks for Live.
- A failed query sends no reply, only `/live/error <text>` to the IP that sent to AbletonOSC last
  (`OSCServer.process`, issue #73). It names no request, and errors of other programs on the
  bridge's machine arrive too (they share the IP and port 11001). So errors never decide which
  query failed: each batch is bracketed by fences, queries whose reply echoes a fresh number.
  When a fence is answered, AbletonOSC has handled everything sent before it, and a query still
  unanswered has failed; the error texts that arrived meanwhile only explain why.
- Writes are never answered: each clip written is checked through queries of its properties,
  and when an error arrived during the writes its notes are read back, so that another client's
  error does not fail a delivery that worked.
- A reply is one datagram, and macOS refuses datagrams over 9,216 bytes (AbletonOSC issue #88,
  a dense hi-hat clip). Notes are read in pages with the four-argument `get/notes` and an
  explicit pitch range (0, span 128: the default span 127 misses pitch 127, issue #190); a page
  AbletonOSC could not send is split and asked again.
- `/live/clip/add/notes` carries pitch, start, duration, velocity and mute only, and no AbletonOSC
  address sets a note's probability, velocity deviation or release velocity: delivered notes get
  Live's defaults for those (the Max for Live devices keep them).
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import socket
import struct
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Sequence

from bridge import protocol as P
from bridge.clip import Clip, ClipError, Note, TimeSignature
from bridge.quiet_log import QuietLog
from bridge.tools import ToolError
from bridge.udp import OscReceiver

log = logging.getLogger(__name__)

DEFAULT_PORT = 11000
DEFAULT_REPLY_PORT = 11001
DEFAULT_TIMEOUT = 2.0  # seconds without any answer: AbletonOSC ticks every ~100 ms, Live may be busy
REQUIRED = "AbletonOSC from 18 Nov 2023 or later"
NOTES_PER_CHUNK = 200  # add/notes: 5 values (25 bytes) a note, about 5 KB a message
PAGE_BEATS = 4.0  # get/notes pages: a reply spends 21 bytes a note, so 380 notes in 4 beats stay under 8 KB
MIN_PAGE_BEATS = 1 / 64  # a refused page is halved in time down to this, then in pitch
MARGIN = 1 / 64  # pages overlap: Live compares starts as doubles, page bounds travel as float32
MAX_PAGES = 4096  # page queries in one read, splits included
PAGES_PER_BATCH = 16  # at most 16 replies of up to 9 KB in flight
RECEIVE_BUFFER = 1 << 20
BATCH_BYTES = 32 * 1024  # datagrams sent before waiting for AbletonOSC to catch up
FENCE = "/live/song/get/is_playing"  # any song getter echoes extra arguments after its value
CLIP_PROPERTIES = ("is_midi_clip", "length", "name", "looping", "loop_start", "start_marker")
SIZE_ERROR = "Socket error"  # what AbletonOSC reports for a reply the OS refused to send


class AbletonError(ToolError):
    """AbletonOSC reported an error (`live_error`) or did not answer (`live_timeout`)."""

    code = "live_error"


class Query:
    """A message whose answer the bridge waits for: `reply` gets the values after the echo.

    `echo` leading arguments come back first; then one value (`values` 1), a note list of five
    values a note (`values` None), or for a fence its value and `nonce`.
    """

    def __init__(self, address: str, *args: Any, echo: int = 0, values: int | None = 1,
                 nonce: int | None = None) -> None:
        self.address, self.args, self.echo, self.values, self.nonce = address, args, echo, values, nonce
        self.reply: list | None = None

    @property
    def key(self) -> tuple:
        return self.address, self.args[:self.echo]

    def matches(self, address: str, args: list) -> bool:
        if address != self.address or tuple(args[:self.echo]) != self.args[:self.echo]:
            return False
        rest = len(args) - self.echo
        if self.nonce is not None:
            return rest == 2 and args[-1] == self.nonce
        return rest % 5 == 0 if self.values is None else rest == self.values

    def __str__(self) -> str:
        return " ".join([self.address, *map(str, self.args)])


def note_chunks(track: int, slot: int, notes: Sequence[Note]) -> list[bytes]:
    """`/live/clip/add/notes t s (pitch start duration velocity mute)*` messages, each under 8 KB.

    Ints, float32s and 0/1 for mute: Live's note specification takes ints for bools
    (boost.python's bool converter accepts any int)."""
    out = []
    for i in range(0, len(notes), NOTES_PER_CHUNK):
        values: list[Any] = []
        for n in notes[i:i + NOTES_PER_CHUNK]:
            values += [n.pitch, float(n.start), float(n.duration), n.velocity, int(n.mute)]
        out.append(P.message("/live/clip/add/notes", track, slot, *values))
    return out


def said(errors: list[str]) -> AbletonError:
    """An error quoting what AbletonOSC said, each text once."""
    return AbletonError(f"AbletonOSC: {'; '.join(dict.fromkeys(errors))}")


def float32(value: float) -> float:
    """The value as a float32 carries it: what Live stores and AbletonOSC sends back."""
    return struct.unpack("f", struct.pack("f", value))[0]


@dataclass(frozen=True)
class Page:
    """Notes of one clip (`window` in a read) starting in [start, end) with pitches [pitch, pitch + pitches)."""

    window: int
    track: int
    slot: int
    start: float
    end: float
    pitch: int = 0
    pitches: int = 128

    def query(self) -> Query:
        return Query("/live/clip/get/notes", self.track, self.slot, self.pitch, self.pitches,
                     self.start - MARGIN, self.end - self.start + 2 * MARGIN, echo=2, values=None)

    def notes(self, values: list) -> list[tuple]:
        """(pitch, start, duration, velocity, mute) of the reply's notes inside the page."""
        out = []
        for i in range(0, len(values), 5):
            pitch, start, duration, velocity, mute = values[i:i + 5]
            if not (self.pitch <= pitch < self.pitch + self.pitches
                    and self.start - 2 * MARGIN <= start < self.end + 2 * MARGIN):
                raise AbletonError(f"AbletonOSC ignored the range of /live/clip/get/notes; the bridge needs {REQUIRED}")
            if self.start <= start < self.end:
                out.append((int(pitch), float(start), float(duration), float(velocity), bool(mute)))
        return out

    def split(self) -> list["Page"]:
        """Two pages holding what this one holds, or none when it cannot shrink further."""
        if self.end - self.start > MIN_PAGE_BEATS:
            middle = (self.start + self.end) / 2
            return [replace(self, end=middle), replace(self, start=middle)]
        if self.pitches > 1:
            half = self.pitches // 2
            return [replace(self, pitches=half), replace(self, pitch=self.pitch + half, pitches=self.pitches - half)]
        return []


def pages(window: int, track: int, slot: int, start: float, end: float) -> list[Page]:
    count = max(1, math.ceil((end - start) / PAGE_BEATS))
    return [Page(window, track, slot, start + i * PAGE_BEATS, min(end, start + (i + 1) * PAGE_BEATS))
            for i in range(count)]


class AbletonOSC:
    """An AbletonOSC peer: `host:port` takes requests, replies arrive on `reply_port`.

    Nothing is bound until the first operation, so a bridge that never touches Live leaves
    port 11001 to other programs. Use from one event loop; operations run one at a time.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, reply_port: int = DEFAULT_REPLY_PORT,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.reply_port = reply_port
        self.timeout = timeout
        self._transport: asyncio.DatagramTransport | None = None
        self._lock: asyncio.Lock | None = None
        self._pending: list[Query] = []  # in the order sent, fences included
        self._settled: asyncio.Future | None = None  # set when the last fence of a batch is answered
        self._errors: list[str] = []  # /live/error texts of the current operation
        self._answers = 0
        self._nonces = itertools.count(1)
        self._quiet = QuietLog(log)
        self._senders: set[tuple[str, int]] = set()  # where AbletonOSC's replies come from

    async def _open(self) -> None:
        if self._transport is None:
            loop = asyncio.get_running_loop()
            local = "127.0.0.1" if P.is_loopback(self.host) else "0.0.0.0"
            try:
                # AbletonOSC answers from the socket it listens on (OSCServer.send uses self._socket,
                # abletonosc/osc_server.py): a reply comes from the Live host's address and port.
                found = await loop.getaddrinfo(self.host, self.port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
                self._senders = {(info[4][0], self.port) for info in found}
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: OscReceiver(self._datagram, self._quiet, self._from_live), local_addr=(local, self.reply_port))
            except OSError as exc:
                raise AbletonError(f"cannot listen for AbletonOSC replies on udp port {self.reply_port}: "
                                   f"{exc.strerror or exc}") from None
            with contextlib.suppress(OSError):  # room for a batch of note pages, whatever the OS default
                self._transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @contextlib.asynccontextmanager
    async def _operation(self) -> AsyncIterator[None]:
        await self._open()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._errors.clear()
            try:
                yield
            except (TypeError, ValueError, IndexError) as exc:
                if isinstance(exc, ClipError):  # a clip Live holds that no tool can take: bad_clip
                    raise
                # A reply of the right address and arity but the wrong types (a changed
                # AbletonOSC, or a program on Live's host and port): the user's problem, not a bug.
                raise AbletonError(f"AbletonOSC sent a reply this bridge cannot read ({exc}); the bridge needs "
                                   f"{REQUIRED}") from None

    # Talking -----------------------------------------------------------------------------

    def _from_live(self, addr: tuple) -> bool:
        """Only AbletonOSC may answer: any other local program could send to the reply port."""
        if (addr[0], addr[1]) in self._senders:
            return True
        self._quiet.warning("stranger", "dropped a datagram from %s:%d on the AbletonOSC reply port: "
                            "AbletonOSC answers from %s:%d", addr[0], addr[1], self.host, self.port)
        return False

    def _datagram(self, messages: list[P.Message], skipped: int, addr: tuple) -> None:
        for msg in messages:
            self._received(msg.address, list(msg.params))

    def _received(self, address: str, args: list) -> None:
        if address == "/live/error":
            text = " ".join(str(a) for a in args)
            log.info("AbletonOSC error: %s", text)
            self._errors.append(text)
            return
        for i, query in enumerate(self._pending):
            if query.matches(address, args):
                query.reply = list(args[query.echo:])
                self._answers += 1
                if query.nonce is None:
                    del self._pending[i]
                    return
                del self._pending[:i + 1]  # a fence: what was sent before it is handled, answered or not
                if not self._pending and self._settled is not None and not self._settled.done():
                    self._settled.set_result(None)
                return
            if query.nonce is not None:
                break  # answers to queries after an unanswered fence cannot have come yet
        log.debug("AbletonOSC message %s matched no query", address)

    def _fence(self) -> Query:
        nonce = next(self._nonces)
        return Query(FENCE, nonce, nonce=nonce)

    async def _talk(self, items: Sequence[bytes | Query]) -> list[str]:
        """Send writes (datagrams) and queries in order, in batches between fences.

        Returns once AbletonOSC handled them all, with the error texts that arrived meanwhile;
        a query whose `reply` is still None failed.
        """
        first_error = len(self._errors)
        batch: list[bytes | Query] = []
        size = 0
        for item in items:
            length = len(item) if isinstance(item, bytes) else len(P.message(item.address, *item.args))
            if batch and size + length > BATCH_BYTES:
                await self._batch(batch)
                batch, size = [], 0
            batch.append(item)
            size += length
        await self._batch(batch)
        return self._errors[first_error:]

    async def _batch(self, items: Sequence[bytes | Query]) -> None:
        assert self._transport is not None, "call inside an operation"
        self._settled = asyncio.get_running_loop().create_future()
        self._pending = []
        datagrams: list[bytes] = []
        keys: set[tuple] = set()

        def ask(query: Query) -> None:
            self._pending.append(query)
            datagrams.append(P.message(query.address, *query.args))

        ask(self._fence())  # answers to anything sent before come before this fence's
        for item in items:
            if isinstance(item, bytes):
                datagrams.append(item)
                continue
            if item.key in keys:  # two answers could not be told apart: a fence between them
                ask(self._fence())
                keys.clear()
            keys.add(item.key)
            ask(item)
        ask(self._fence())
        for data in datagrams:
            self._transport.sendto(data, (self.host, self.port))
        while not self._settled.done():
            answers = self._answers
            try:
                await asyncio.wait_for(asyncio.shield(self._settled), self.timeout)
            except asyncio.TimeoutError:
                if self._answers == answers:
                    stuck = next((q for q in self._pending if q.nonce is None), self._pending[0])
                    self._pending = []
                    raise AbletonError(
                        f"AbletonOSC did not answer {stuck.address} within {self.timeout:g} s; is Live running with "
                        f"{REQUIRED} listening on {self.host}:{self.port}?", "live_timeout") from None

    def _failure(self, query: Query, errors: list[str]) -> AbletonError:
        """Why `query` went unanswered, from the errors that came meanwhile."""
        if f"Unknown OSC address: {query.address}" in errors:
            return AbletonError(f"AbletonOSC does not know {query.address}; the bridge needs {REQUIRED}")
        if errors:
            return said(errors)
        return AbletonError(f"AbletonOSC did not answer {query}, and no error text reached the bridge (lost, or "
                            f"sent to another program: AbletonOSC sends errors to whoever sent to it last)")

    def _answer(self, query: Query, errors: list[str]) -> Any:
        if query.reply is None:
            raise self._failure(query, errors)
        return query.reply[0]

    # Reading -----------------------------------------------------------------------------

    @staticmethod
    def _song_queries() -> list[Query]:
        return [Query(f"/live/song/get/{name}") for name in ("tempo", "signature_numerator", "signature_denominator")]

    def _song(self, queries: list[Query], errors: list[str]) -> tuple[float, TimeSignature]:
        tempo, numerator, denominator = (self._answer(q, errors) for q in queries)
        return float(tempo), TimeSignature(int(numerator), int(denominator))

    @staticmethod
    def _size_queries() -> list[Query]:
        return [Query("/live/song/get/num_tracks"), Query("/live/song/get/num_scenes")]

    def _scenes(self, track: int, slot: int, size: list[Query], errors: list[str]) -> int:
        """The set's scene count, once `track` and `slot` are known to exist."""
        tracks, scenes = (int(self._answer(q, errors)) for q in size)
        if not 0 <= track < tracks:
            raise AbletonError(f"track {track} does not exist; the set has tracks 0-{tracks - 1}")
        if not 0 <= slot < scenes:
            raise AbletonError(f"slot {slot} does not exist; the set has slots 0-{scenes - 1}")
        return scenes

    async def song_context(self) -> Clip:
        """An empty clip carrying the set's tempo and meter, for tools that start from nothing."""
        async with self._operation():
            song = self._song_queries()
            tempo, meter = self._song(song, await self._talk(song))
            return Clip((), meter.beats_per_bar, tempo, meter)

    async def read_clips(self, track: int, slot: int, count: int = 1) -> list[Clip]:
        """The MIDI clips in `count` slots from `slot` on, with the set's tempo and meter.

        A looping clip is read from its loop start to its loop end, any other from its start
        marker on; `length` is what Live reports (the loop length, or start to end marker), and
        note starts are counted from the loop start or start marker. Three stages, a tick each:
        the set, the clips' properties, their notes.
        """
        async with self._operation():
            slots = range(slot, slot + count)
            size, song = self._size_queries(), self._song_queries()
            has_clip = [Query("/live/clip_slot/get/has_clip", track, s, echo=2) for s in slots]
            errors = await self._talk([*size, *song, *has_clip])
            self._scenes(track, slots[-1], size, errors)
            tempo, meter = self._song(song, errors)
            for s, query in zip(slots, has_clip):
                if not self._answer(query, errors):
                    raise AbletonError(f"track {track} slot {s} holds no clip")
            asked = [[Query(f"/live/clip/get/{name}", track, s, echo=2) for name in CLIP_PROPERTIES] for s in slots]
            errors = await self._talk([q for queries in asked for q in queries])
            regions = [self._region(track, s, queries, errors) for s, queries in zip(slots, asked)]
            notes = await self._read_notes([(track, s, start, start + length) for s, start, length, _ in regions])
            return [Clip(tuple(sorted((Note(p, t - start, d, max(1, min(127, round(v))), m) for p, t, d, v, m in raw),
                                      key=lambda n: (n.start, n.pitch))), length, tempo, meter, None, name).validate()
                    for (_, start, length, name), raw in zip(regions, notes)]

    def _region(self, track: int, slot: int, queries: list[Query], errors: list[str]) -> tuple[int, float, float, str]:
        """(slot, start, length, name) of a clip from the answers to CLIP_PROPERTIES."""
        value = dict(zip(CLIP_PROPERTIES, (self._answer(q, errors) for q in queries)))
        if not value["is_midi_clip"]:
            raise AbletonError(f"track {track} slot {slot} holds an audio clip, not a MIDI clip")
        start = value["loop_start"] if value["looping"] else value["start_marker"]
        return slot, float(start), float(value["length"]), str(value["name"] or "")

    async def _read_notes(self, windows: Sequence[tuple[int, int, float, float]]) -> list[list[tuple]]:
        """Notes starting in each (track, slot, start, end) window, all pitches, read in pages."""
        todo = [page for i, window in enumerate(windows) for page in pages(i, *window)]
        found: list[list[tuple]] = [[] for _ in windows]
        asked = 0
        while todo:
            batch, todo = todo[:PAGES_PER_BATCH], todo[PAGES_PER_BATCH:]
            queries = [page.query() for page in batch]
            asked += len(queries)
            errors = await self._talk(queries)
            for page, query in zip(batch, queries):
                if query.reply is not None:
                    found[page.window] += page.notes(query.reply)
                    continue
                # Refused as too big, or lost: ask for halves. Any other error ends the read.
                parts = page.split()
                if not parts or asked > MAX_PAGES or (errors and not any(e.startswith(SIZE_ERROR) for e in errors)):
                    raise self._failure(query, errors)
                todo += parts
        return found

    # Writing -----------------------------------------------------------------------------

    async def write_clips(self, track: int, slot: int, clips: Sequence[Clip], color: int) -> list[int]:
        """Put each clip in the next empty slot from `slot` on; return the slots used.

        Nothing is written unless there are enough empty slots for every clip. Three stages, a
        tick each: the set and track, the empty slots, the clips (in batches of BATCH_BYTES).
        """
        async with self._operation():
            size, midi = self._size_queries(), Query("/live/track/get/has_midi_input", track, echo=1)
            errors = await self._talk([*size, midi])
            scenes = range(slot, self._scenes(track, slot, size, errors))
            if not self._answer(midi, errors):
                raise AbletonError(f"track {track} is not a MIDI track")
            has_clip = [Query("/live/clip_slot/get/has_clip", track, s, echo=2) for s in scenes]
            errors = await self._talk(has_clip)
            free = [s for s, query in zip(scenes, has_clip) if not self._answer(query, errors)]
            if len(free) < len(clips):
                raise AbletonError(f"track {track} has {len(free)} empty slot(s) from slot {slot} on; "
                                   f"{len(clips)} needed (add scenes or pick another slot)")
            free = free[:len(clips)]
            extras = sum(1 for clip in clips for n in clip.notes
                         if (n.probability, n.velocity_deviation, n.release_velocity) != (1.0, 0.0, 64))
            if extras:
                log.warning("AbletonOSC's add/notes takes no probability, velocity deviation or release velocity: "
                            "%d note(s) get Live's defaults for them", extras)
            items: list[bytes | Query] = []
            checks = []
            for s, clip in zip(free, clips):
                items += self._clip_writes(track, s, clip, color)
                checks.append([Query(f"/live/clip/get/{name}", track, s, echo=2) for name in ("length", "looping")])
                items += checks[-1]
            errors = await self._talk(items)
            for s, clip, (length, looping) in zip(free, clips, checks):
                if (length.reply, looping.reply) != ([float32(clip.length)], [True]):
                    raise said(errors) if errors else AbletonError(
                        f"track {track} slot {s} does not hold the clip as written (length {length.reply}, "
                        f"looping {looping.reply})")
            if errors:
                await self._confirm_notes(track, free, clips, errors)
            return free

    @staticmethod
    def _clip_writes(track: int, slot: int, clip: Clip, color: int) -> list[bytes]:
        return [P.message("/live/clip_slot/create_clip", track, slot, float(clip.length)),
                *note_chunks(track, slot, clip.sorted_notes()),
                P.message("/live/clip/set/name", track, slot, clip.name),
                P.message("/live/clip/set/color", track, slot, color),
                P.message("/live/clip/set/loop_start", track, slot, 0.0),
                P.message("/live/clip/set/loop_end", track, slot, float(clip.length)),
                P.message("/live/clip/set/looping", track, slot, 1)]

    async def _confirm_notes(self, track: int, slots: list[int], clips: Sequence[Clip], errors: list[str]) -> None:
        """Errors came during the writes: fail unless the clips hold exactly the notes sent."""
        windows = [(track, s, 0.0, max([clip.length, *(n.start + MIN_PAGE_BEATS for n in clip.notes)]))
                   for s, clip in zip(slots, clips)]
        for clip, found in zip(clips, await self._read_notes(windows)):
            sent = sorted((n.pitch, float32(n.start), float32(n.duration), n.velocity, n.mute) for n in clip.notes)
            if sent != sorted((p, t, d, round(v), m) for p, t, d, v, m in found):
                raise said(errors)
        log.warning("the clips were written in full; these AbletonOSC errors came from another program: %s",
                    "; ".join(errors))
