"""The bridge's OSC wire format: addresses, typed messages, clip chunks and SLIP framing.

Everything the server and the clients put on the wire is built here, so the two sides cannot
drift apart. Only `i`, `f` and `s` arguments are ever sent: Max and TouchOSC handle nothing
else reliably, and python-osc would otherwise infer True/False/Nil or MIDI types on its own.
A clip travels as one header message plus note chunks small enough that every datagram stays
under 1400 bytes, the size that crosses Wi-Fi without IP fragmentation.
"""
from __future__ import annotations

import ipaddress
import math
import re
import struct
from dataclasses import dataclass
from functools import partial
from itertools import chain
from numbers import Integral, Real
from typing import Any, Iterator, Sequence

from pythonosc.osc_message import OscMessage

from bridge.clip import Clip, ClipError, Note, Scale, TimeSignature

PREFIX = "/bridge/"
DEFAULT_PORT = 9700
DEFAULT_TCP_PORT = 9701

# Requests.
PING = PREFIX + "ping"
STATUS = PREFIX + "status"
MODELS = PREFIX + "models"
CANCEL = PREFIX + "cancel"
RESEND = PREFIX + "resend"
REGISTER = PREFIX + "register"
CLIP = PREFIX + "clip"
NOTES = PREFIX + "notes"
# Replies (STATUS doubles as the status reply and the status push).
ACK = PREFIX + "ack"
PROGRESS = PREFIX + "progress"
RESULT = PREFIX + "result"
RESULT_NOTES = PREFIX + "result_notes"
DONE = PREFIX + "done"
NOTICE = PREFIX + "notice"  # something the user should know about a result: /bridge/notice <id> <text>
ERROR = PREFIX + "error"
PONG = PREFIX + "pong"
MODEL = PREFIX + "model"
REFUSED = PREFIX + "refused"
TOOL = PREFIX + "tool"
PARAM = PREFIX + "param"
LIMIT = PREFIX + "limit"

# Keys every request may carry besides a tool's own parameters.
COMMON_KEYS = ("reply_port", "timeout")

MAX_DATAGRAM = 1400
MAX_ID_BYTES = 64
MAX_NAME_BYTES = 200
# 8 note fields of 4 bytes plus 8 type-tag characters per note: 40 bytes. 30 notes with a
# maximal id and header stay near 1310 bytes (asserted by tests/test_protocol.py).
CHUNK_NOTES = 30
NOTE_FIELDS = 8
NOTE_TYPES = "iffiiffi"  # pitch start duration velocity mute probability velocity_deviation release_velocity
# Live clips are far shorter; this only stops a "length 1e38" from reaching a model's grid.
MAX_BEATS = 65536.0
INT32 = (-(2**31), 2**31 - 1)


class ProtocolError(ValueError):
    """A message that does not follow the protocol; answered with `bad_request`."""


def ip_address(text: str) -> str:
    """An IPv4 or IPv6 address spelt as sockets report peers ("::1", not "0::1"); ValueError otherwise."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"not an IP address: {text!r} (give one such as 192.168.1.20 or ::1)") from None


def is_loopback(host: str) -> bool:
    """Whether a listening or target address stays on this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _osc_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return data + b"\0" * (4 - len(data) % 4)


def message(address: str, *args: Any) -> bytes:
    """One OSC message with explicit types: bools and ints as `i`, reals as `f`, text as `s`.

    OSC strings end at their first NUL, so a NUL inside text (a clip name from a MIDI file, say)
    would cut it and shift every argument after it: NULs are dropped from text instead.
    Built with struct rather than python-osc's builder, which parses every message it builds
    again (half of the server's cost of sending a 4,800-note result; the bytes are the same)."""
    tags, parts = [","], []
    for arg in args:
        kind = type(arg)
        if kind is str or (kind is not int and kind is not float and kind is not bool and isinstance(arg, str)):
            tags.append("s")
            parts.append(_osc_string(arg.replace("\x00", "")))
        elif kind is int or kind is bool or isinstance(arg, Integral):
            value = int(arg)
            if not INT32[0] <= value <= INT32[1]:
                raise ValueError(f"{value} does not fit an OSC int32")
            tags.append("i")
            parts.append(_INT.pack(value))
        elif kind is float or isinstance(arg, Real):
            tags.append("f")
            parts.append(_FLOAT.pack(float(arg)))
        else:
            raise TypeError(f"cannot send {type(arg).__name__} over OSC; use int, float or str")
    return _osc_string(address) + _osc_string("".join(tags)) + b"".join(parts)


_INT, _FLOAT = struct.Struct(">i"), struct.Struct(">f")


class Message:
    """A parsed OSC message: what every receiver reads of one (python-osc's OscMessage has the
    same two attributes). `notes` is set only where a receiver asked for note chunks as notes
    (see parse): then `params` ends at the chunk's `n_chunks`, and its notes are in `notes`."""

    __slots__ = ("address", "params", "notes")

    def __init__(self, address: str, params: list[Any], notes: list[Note] | None = None) -> None:
        self.address, self.params, self.notes = address, params, notes


def parse(data: bytes, notes: bool = False) -> Message:
    """Parse one message (not a bundle); any malformed input raises ProtocolError.

    Messages of `i`, `f` and `s` arguments (all the bridge sends, and what Max and TouchOSC
    send) are read with one struct call per run of numbers; anything else goes to python-osc,
    which reads every type tag one by one (a 240-value note chunk cost 0.2 ms that way). With
    `notes`, a note chunk typed as the bridge sends it is read straight into Notes (_read_notes)."""
    try:
        fast = _parse_simple(data, notes)
        if fast is not None:
            return fast
        msg = OscMessage(data)
        return Message(msg.address, msg.params)
    except Exception as exc:  # python-osc lets UnicodeDecodeError and others through
        raise ProtocolError(f"undecodable OSC message: {exc}") from None


_PLANS: dict[bytes, list] = {}  # type tags -> [(struct for a run of numbers, or None for a string)]
_MAX_PLANS = 256
_MAX_PLAN_TAGS = 1024  # longer type tags (no bridge message has them) are planned, never kept


def _plan(tags: bytes) -> list | None:
    """How to read arguments of these type tags, or None when a tag is not i, f or s."""
    plan = _PLANS.get(tags)
    if plan is None:
        if tags.strip(b"ifs"):
            return None
        plan = [struct.Struct(">" + run.decode()) if run != b"s" else None
                for run in re.findall(rb"[if]+|s", tags)]
        if len(tags) <= _MAX_PLAN_TAGS:
            if len(_PLANS) >= _MAX_PLANS:
                _PLANS.clear()
            _PLANS[tags] = plan
    return plan


def _parse_simple(data: bytes, notes: bool = False) -> Message | None:
    """A well-formed message of i, f and s arguments, else None (python-osc then decides)."""
    end, size = data.find(0), len(data)
    if end < 0 or (at := (end + 4) & ~3) > size:
        return None
    address = data[:end].decode("utf-8")
    if at == size:
        return Message(address, [])
    end = data.find(0, at)
    if end < 0 or data[at] != 0x2C or (plan := _plan(tags := data[at + 1:end])) is None:
        return None
    at, params = (end + 4) & ~3, []
    if notes and address in (RESULT_NOTES, NOTES) and (chunk := _read_notes(address, tags, data, at)) is not None:
        return chunk
    for run in plan:
        if run is None:
            end = data.find(0, at)
            if end < 0 or (nxt := (end + 4) & ~3) > size:
                return None
            params.append(data[at:end].decode("utf-8"))
            at = nxt
        else:
            if at + run.size > size:
                return None
            params.extend(run.unpack_from(data, at))
            at += run.size
    return Message(address, params)


# A note as the bridge sends it (NOTE_TYPES), its mute read from the low byte of its int, so that
# it comes out a bool: exact where every mute of the chunk is 0 or 1, which _read_notes checks.
_NOTE_ROW = struct.Struct(">iffi3x?ffi")
_NOTE_TAG_BYTES = NOTE_TYPES.encode()
_make_note = partial(tuple.__new__, Note)  # a Note from its values in order, without Note()'s argument handling
_CHUNK_READERS: dict[int, tuple[struct.Struct, struct.Struct]] = {}  # notes -> (mutes, start and duration)


def _read_notes(address: str, tags: bytes, data: bytes, at: int) -> Message | None:
    """A note chunk (`<id> <clip index> <chunk> <n_chunks>` + notes, tags `siii` + NOTE_TYPES per
    note) read into Message(address, [id, index, chunk, n_chunks], notes), or None for anything
    else, which the caller parses as usual. The notes come out of the bytes one struct row and one
    tuple each, never as a list of values first: a 30-note chunk, parsed, 19 -> 13-16 us. What
    decode_notes checks is checked here, column by column: a mute other than 0 or 1, or a time
    past MAX_BEATS, gives None, and the values are read and checked one by one after all."""
    count, extra = divmod(len(tags) - 4, NOTE_FIELDS)
    if count < 1 or extra or tags[4:] != _NOTE_TAG_BYTES * count:
        return None
    end = data.find(0, at)
    body = ((end + 4) & ~3) + _HEAD.size
    if end < 0 or body + _NOTE_ROW.size * count != len(data):
        return None
    if count not in _CHUNK_READERS:
        if len(_CHUNK_READERS) >= _MAX_PLANS:
            _CHUNK_READERS.clear()
        _CHUNK_READERS[count] = (struct.Struct(">" + "16xi12x" * count), struct.Struct(">" + "4xff20x" * count))
    mutes, times = _CHUNK_READERS[count]
    seconds = times.unpack_from(data, body)
    if not (set(mutes.unpack_from(data, body)) <= {0, 1} and -MAX_BEATS <= min(seconds)
            and max(seconds) <= MAX_BEATS):
        return None
    head = [data[at:end].decode("utf-8"), *_HEAD.unpack_from(data, body - _HEAD.size)]
    return Message(address, head, list(map(_make_note, _NOTE_ROW.iter_unpack(data[body:]))))


BUNDLE_TAG = b"#bundle\0"
_IMMEDIATELY = struct.pack(">q", 1)  # the OSC time tag that means "now"
_SIZE = struct.Struct(">i")


def bundle(messages: Sequence[bytes]) -> bytes:
    """The messages as one OSC bundle, to be handled at once and in order."""
    return BUNDLE_TAG + _IMMEDIATELY + b"".join(_SIZE.pack(len(m)) + m for m in messages)


def decode_packet(data: bytes, max_messages: int = 1 << 16, notes: bool = False) -> tuple[list[Message], int]:
    """The messages of one datagram or frame (a message, or a bundle, nested bundles flattened;
    time tags are ignored), at most `max_messages` of them, and how many more it held; `notes`
    as for parse.

    Bundle elements are walked by their size prefixes and only the kept ones are parsed, so a
    64 KB bundle of two thousand messages costs no more than the messages kept. A malformed
    packet raises ProtocolError; so does a bundle element that is cut short.
    """
    if not data.startswith(BUNDLE_TAG):
        return [parse(data, notes)], 0
    messages: list[Message] = []
    skipped = 0
    pending = [(data, 16)]  # (bundle, offset of its next element), innermost last
    while pending:
        bundle, at = pending.pop()
        if at + 4 > len(bundle):
            if at != len(bundle):
                raise ProtocolError("undecodable OSC bundle: an element size is cut short")
            continue
        size = struct.unpack(">i", bundle[at:at + 4])[0]
        element = bundle[at + 4:at + 4 + size]
        if size <= 0 or len(element) != size:
            raise ProtocolError(f"undecodable OSC bundle: element of {size} bytes does not fit")
        pending.append((bundle, at + 4 + size))
        if element.startswith(BUNDLE_TAG):
            if len(element) < 16:
                raise ProtocolError("undecodable OSC bundle: a nested bundle has no time tag")
            pending.append((element, 16))
        elif len(messages) < max_messages:
            messages.append(parse(element, notes))
        else:
            skipped += 1
    return messages, skipped


def reply_port_in(args: Sequence[Any]) -> Any:
    """The value after a "reply_port" key anywhere in a message, or None: for errors found
    before a request could be parsed (a bad id, an odd key-value list), which must still go
    where a Max, Pure Data or oscsend client listens."""
    for key, value in zip(args[1:], args[2:]):
        if key == "reply_port":
            return value
    return None


def request_id(value: Any) -> str:
    """Normalise a request id (string, int, or a whole float from TouchOSC) to a string."""
    if isinstance(value, bool) or value is None:
        raise ProtocolError("the first argument must be a request id (string or int)")
    if isinstance(value, float):
        if not value.is_integer():
            raise ProtocolError(f"request id must be a string or an integer, got {value}")
        value = int(value)
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ProtocolError("the first argument must be a non-empty request id (string or int)")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise ProtocolError(f"request id longer than {MAX_ID_BYTES} bytes")
    return value


def as_int(name: str, value: Any) -> int:
    """An int from an OSC argument; whole or rounded floats count (TouchOSC sends floats)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(round(value))
    raise ClipError(f"{name} must be a number, got {value!r}")


def as_float(name: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ClipError(f"{name} must be a number, got {value!r}")


def key_values(args: Sequence[Any]) -> dict[str, Any]:
    """`key value key value ...` as a dict; an odd count, a non-text or repeated key is refused."""
    if len(args) % 2:
        raise ProtocolError(f"parameters must come as key value pairs; {args[-1]!r} has no value")
    out: dict[str, Any] = {}
    for key, value in zip(args[::2], args[1::2]):
        if not isinstance(key, str):
            raise ProtocolError(f"parameter name must be text, got {key!r}")
        if key in out:
            raise ProtocolError(f"parameter {key!r} given twice")
        out[key] = value
    return out


def chunk_count(n_notes: int) -> int:
    return math.ceil(n_notes / CHUNK_NOTES)


def truncate(text: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """Cut text to max_bytes of UTF-8 without splitting a character, so datagrams stay small."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def note_args(note: Note) -> tuple:
    return (note.pitch, note.start, note.duration, note.velocity, int(note.mute),
            note.probability, note.velocity_deviation, note.release_velocity)


# The Python type of each value of a note as the bridge sends it (NOTE_TYPES).
_NOTE_WIRE_TYPES = [{"i": int, "f": float}[tag] for tag in NOTE_TYPES]


def decode_notes(args: Sequence[Any]) -> list[Note]:
    """Notes from a flat list of 8-field groups; types are checked, ranges by Clip.validate."""
    if len(args) % NOTE_FIELDS:
        raise ClipError(f"a note chunk holds groups of {NOTE_FIELDS} values, got {len(args)} values")
    if (list(map(type, args)) == _NOTE_WIRE_TYPES * (len(args) // NOTE_FIELDS)
            and (not args or all(-MAX_BEATS <= min(args[k::NOTE_FIELDS]) and max(args[k::NOTE_FIELDS]) <= MAX_BEATS
                                 for k in (1, 2)))):
        # Typed as the bridge sends them: one pass over the types, each note one tuple made in C
        # (0.45 -> 0.19 us a note). Anything else is checked value by value.
        return [_make_note((p, s, d, v, m != 0, prob, dev, rel))
                for p, s, d, v, m, prob, dev, rel in zip(*[iter(args)] * NOTE_FIELDS)]
    notes = []
    for i in range(0, len(args), NOTE_FIELDS):
        p, s, d, v, m, prob, dev, rel = args[i:i + NOTE_FIELDS]
        start, duration = as_float("start", s), as_float("duration", d)
        if abs(start) > MAX_BEATS or abs(duration) > MAX_BEATS:
            raise ClipError(f"note times must be within {MAX_BEATS:g} beats")
        notes.append(Note(as_int("pitch", p), start, duration, as_int("velocity", v),
                          bool(as_int("mute", m)), as_float("probability", prob),
                          as_float("velocity_deviation", dev), as_int("release_velocity", rel)))
    return notes


@dataclass(frozen=True)
class ClipHeader:
    """A clip's header message decoded: everything but the notes, and how many to expect."""

    index: int
    n_clips: int
    n_notes: int
    n_chunks: int
    length: float
    tempo: float
    time_signature: TimeSignature
    name: str
    scale: Scale | None

    def clip(self, notes: Sequence[Note]) -> Clip:
        return Clip(tuple(notes), self.length, self.tempo, self.time_signature, self.scale, self.name)


def header_args(clip: Clip, index: int, n_clips: int) -> tuple:
    """Arguments after the id: index n_clips n_notes n_chunks length tempo ts_num ts_den name [root mode]."""
    n = len(clip.notes)
    args = (index, n_clips, n, chunk_count(n), clip.length, clip.tempo,
            clip.time_signature.numerator, clip.time_signature.denominator, truncate(clip.name))
    if clip.scale is not None:
        args += (clip.scale.root, clip.scale.mode)
    return args


def decode_header(args: Sequence[Any], max_clips: int, max_notes: int, max_beats: float = MAX_BEATS) -> ClipHeader:
    """Check a header's counts and length BEFORE anything is allocated for its notes."""
    if len(args) not in (9, 11):
        raise ClipError(f"clip header takes 9 values (or 11 with scale root and mode), got {len(args)}")
    index, n_clips, n_notes, n_chunks = (as_int(k, v) for k, v in zip(
        ("clip index", "clip count", "note count", "chunk count"), args[:4]))
    if not 1 <= n_clips <= max_clips:
        raise ClipError(f"clip count must be 1-{max_clips}, got {n_clips}")
    if not 0 <= index < n_clips:
        raise ClipError(f"clip index must be 0-{n_clips - 1}, got {index}")
    if not 0 <= n_notes <= max_notes:
        raise ClipError(f"note count must be 0-{max_notes}, got {n_notes}")
    if not (n_chunks == 0 if n_notes == 0 else 1 <= n_chunks <= n_notes):
        raise ClipError(f"chunk count {n_chunks} does not fit {n_notes} notes")
    length, tempo = as_float("length", args[4]), as_float("tempo", args[5])
    if abs(length) > max_beats:
        raise ClipError(f"clip length must be at most {max_beats:g} beats, got {length:g}")
    meter = TimeSignature(as_int("time signature numerator", args[6]), as_int("time signature denominator", args[7]))
    if not isinstance(args[8], str):
        raise ClipError(f"clip name must be text, got {args[8]!r}")
    scale = Scale(as_int("scale root", args[9]), str(args[10])) if len(args) == 11 else None
    return ClipHeader(index, n_clips, n_notes, n_chunks, length, tempo, meter, truncate(args[8]), scale)


class ClipAssembly:
    """Clips put back together from header and chunk messages arriving in any order.

    Used for uploads on the server and results on the client. Only what has arrived is
    stored, so a header announcing 10,000 notes costs nothing until notes come, and every
    count is checked before notes are kept. A chunk weighs its notes, and an empty chunk one:
    empty chunks fill the cap as notes do, and each costs constant time (the weight held per
    clip is kept as a running sum, never recounted).
    """

    def __init__(self, max_clips: int, max_notes: int, max_beats: float = MAX_BEATS) -> None:
        self.max_clips = max_clips
        self.max_notes = max_notes
        self.max_beats = max_beats
        self.n_clips: int | None = None
        self.headers: dict[int, ClipHeader] = {}
        self.chunks: dict[tuple[int, int], list[Note]] = {}
        self.announced: dict[int, int] = {}  # clip -> n_chunks, from notes seen before the header
        self.held: dict[int, int] = {}  # clip -> weight of its chunks
        self.n_notes = 0  # weight of every chunk held: notes, an empty chunk counting one

    def set_clip_count(self, n_clips: int) -> None:
        if self.n_clips is not None and n_clips != self.n_clips:
            raise ClipError(f"clip count changed from {self.n_clips} to {n_clips}")
        self.n_clips = n_clips

    def add_header(self, args: Sequence[Any]) -> None:
        header = decode_header(args, self.max_clips, self.max_notes, self.max_beats)
        self.set_clip_count(header.n_clips)
        if self.announced.get(header.index, header.n_chunks) != header.n_chunks:
            raise ClipError(f"clip {header.index}: header says {header.n_chunks} chunks, "
                            f"notes said {self.announced[header.index]}")
        self.headers[header.index] = header

    def add_chunk(self, args: Sequence[Any], notes: list[Note] | None = None) -> None:
        """`<clip index> <chunk> <n_chunks> notes...`, as in `notes` and `result_notes`; `notes`
        when the message was read with its notes apart (Message.notes), after `n_chunks`."""
        if len(args) < 3:
            raise ClipError("a note chunk starts with <clip index> <chunk> <n_chunks>")
        index, chunk, n_chunks = (as_int(k, v) for k, v in zip(("clip index", "chunk", "chunk count"), args))
        if not 0 <= index < (self.n_clips or self.max_clips):
            raise ClipError(f"clip index {index} is out of range")
        header = self.headers.get(index)
        expected = header.n_chunks if header else self.announced.get(index, n_chunks)
        if n_chunks != expected or not 0 <= chunk < n_chunks:
            raise ClipError(f"clip {index}: chunk {chunk} of {n_chunks} does not fit the {expected} chunks announced")
        if notes is None:
            notes = decode_notes(args[3:])
        replaced = self.chunks.get((index, chunk))
        change = _weight(notes) - (0 if replaced is None else _weight(replaced))
        held = self.held.get(index, 0) + change
        limit = header.n_notes if header else self.max_notes
        if held > limit:
            raise ClipError(f"clip {index}: {held} notes arrived, more than the {limit} announced"
                            + ("" if notes else " (an empty chunk counts as one)"))
        self.announced[index] = n_chunks
        self.held[index] = held
        self.n_notes += change
        self.chunks[(index, chunk)] = notes

    def clip_count(self) -> int:
        indexes = set(self.headers) | {i for i, _ in self.chunks}
        return self.n_clips if self.n_clips is not None else (max(indexes) + 1 if indexes else 0)

    def missing(self, at_least: int = 0) -> list[tuple[int, int]]:
        """(clip, chunk) pairs still to come; chunk -1 stands for the clip's header."""
        out = []
        for index in range(max(self.clip_count(), at_least)):
            header = self.headers.get(index)
            if header is None:
                out.append((index, -1))
            else:
                out.extend((index, c) for c in range(header.n_chunks) if (index, c) not in self.chunks)
        return out

    def clips(self) -> list[Clip]:
        """The finished clips; call only when nothing is missing."""
        clips = []
        for index in range(self.clip_count()):
            header = self.headers[index]
            notes = [n for c in range(header.n_chunks) for n in self.chunks[(index, c)]]
            if len(notes) != header.n_notes:
                raise ClipError(f"clip {index}: header announced {header.n_notes} notes, chunks held {len(notes)}")
            clips.append(header.clip(notes))
        return clips


def _weight(notes: Sequence[Note]) -> int:
    return max(1, len(notes))


def format_missing(missing: Sequence[tuple[int, int]], max_bytes: int = 900) -> str:
    """The `missing_input` message: `<clip>:header` or `<clip>:<chunk>` tokens, space-separated.

    Only the first tokens that fit in max_bytes are listed; the client resends those, asks
    again and hears about the rest, so the error itself never outgrows a datagram.
    """
    tokens = [f"{i}:header" if c == -1 else f"{i}:{c}" for i, c in missing]
    text = ""
    for token in tokens:
        if len(text) + len(token) + 1 > max_bytes:
            break
        text = f"{text} {token}" if text else token
    return text


def parse_missing(text: str) -> list[tuple[int, int]]:
    out = []
    for token in text.split():
        clip, _, chunk = token.partition(":")
        try:
            out.append((int(clip), -1 if chunk == "header" else int(chunk)))
        except ValueError:
            raise ProtocolError(f"not a missing-input token: {token!r}") from None
    return out


def param_args(tool: str, param: dict[str, Any]) -> tuple:
    """`<tool> <name> <type> <min> <max> <default> <choices-csv> <help>`; absent values are ""."""
    kind, default = param["type"], param["default"]
    if default is None:
        default = ""
    elif kind in ("int", "bool"):
        default = int(default)
    elif kind == "float":
        default = float(default)
    return (tool, param["name"], kind, float(param["min"]) if "min" in param else "",
            float(param["max"]) if "max" in param else "", default, ",".join(param.get("choices", ())), param["help"])


def clip_messages(header_address: str, notes_address: str, rid: str, clip: Clip,
                  index: int, n_clips: int) -> list[bytes]:
    """The header and every note chunk of one clip, for upload or for a result."""
    return [message(header_address, rid, *header_args(clip, index, n_clips))] + [
        note_chunk(notes_address, rid, clip, index, chunk) for chunk in range(chunk_count(len(clip.notes)))]


def note_chunk(address: str, rid: str, clip: Clip, index: int, chunk: int) -> bytes:
    """`<id> <clip index> <chunk> <n_chunks>` then up to CHUNK_NOTES notes of 8 values each.

    The notes are packed by one struct call: building them value by value was most of the
    server's cost of sending a big result. Times always go as `f` (an int start too); notes
    whose integer fields are not integers (a float pitch from a careless caller) go through
    `message`, which types each value."""
    notes = clip.notes[chunk * CHUNK_NOTES:(chunk + 1) * CHUNK_NOTES]
    flat = list(chain.from_iterable(notes))  # a Note is its values in wire order (mute packs as 0/1)
    head = (rid, index, chunk, chunk_count(len(clip.notes)))
    try:
        body = _HEAD.pack(*head[1:]) + _note_struct(len(notes)).pack(*flat)
    except (struct.error, OverflowError):  # a float pitch, a value past int32: typed one by one
        return message(address, *head, *(value for note in notes for value in note_args(note)))
    return (_osc_string(address) + _osc_string(",siii" + NOTE_TYPES * len(notes))
            + _osc_string(rid.replace("\x00", "")) + body)


_HEAD = struct.Struct(">iii")
_NOTE_STRUCTS: dict[int, struct.Struct] = {}


def _note_struct(n: int) -> struct.Struct:
    if n not in _NOTE_STRUCTS:
        _NOTE_STRUCTS[n] = struct.Struct(">" + NOTE_TYPES * n)
    return _NOTE_STRUCTS[n]


# OSC 1.1 stream framing (SLIP, RFC 1055), used on the TCP listener.
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def slip_encode(packet: bytes) -> bytes:
    """Frame with END on both sides (the double-END form receivers of either style accept)."""
    body = packet.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]), bytes([ESC, ESC_END]))
    return bytes([END]) + body + bytes([END])


class SlipDecoder:
    """Turn a byte stream into packets; empty frames (from double END) are skipped.

    A frame longer than `max_frame` or an invalid escape raises ProtocolError: the stream can
    no longer be trusted and the caller closes it. Frames are split with `bytes.find` and
    unescaped whole, which keeps a 4 MB upload from costing seconds of Python loops.
    """

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self.max_frame = max_frame
        self._frame = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        start = 0
        while (end := data.find(END, start)) >= 0:
            self._add(data[start:end])
            if self._frame:
                frame, self._frame = bytes(self._frame), bytearray()
                yield _unescape(frame)
            start = end + 1
        self._add(data[start:])

    def _add(self, piece: bytes) -> None:
        self._frame += piece
        if len(self._frame) > self.max_frame:
            raise ProtocolError(f"SLIP frame longer than {self.max_frame} bytes")


_BAD_ESCAPE = re.compile(bytes([ESC]) + b"(?![" + bytes([ESC_END, ESC_ESC]) + b"])")


def _unescape(frame: bytes) -> bytes:
    bad = _BAD_ESCAPE.search(frame)
    if bad:
        following = frame[bad.start() + 1:bad.start() + 2]
        raise ProtocolError(f"invalid SLIP escape {following.hex() or 'at end of frame'}")
    # Every ESC is followed by ESC_END or ESC_ESC, so the two replacements cannot overlap.
    return frame.replace(bytes([ESC, ESC_END]), bytes([END])).replace(bytes([ESC, ESC_ESC]), bytes([ESC]))
