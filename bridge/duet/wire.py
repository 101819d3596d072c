"""The Duet stream on the wire: `/bridge/duet/...` messages (docs/protocol.md, "Play along").

Like the rest of the protocol (bridge/protocol.py), only `i`, `f` and `s` travel and every
datagram stays under 1400 bytes. An answer is sent as self-contained chunks: each carries the
answer's start beat and its own notes as offsets from it, so a client can play a chunk as soon
as it arrives. The start is a beat or a bar line, exact in a float32 up to 2**22 beats, and the
offsets are small, so a note's time survives float32 to well under a millisecond at any tempo.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from bridge import protocol as P
from bridge.clip import ClipError
from bridge.duet.events import Answer, Cut, Notice, Timed
from bridge.duet.modes import MODES
from bridge.errors import MAX_MESSAGE_BYTES

PREFIX = P.PREFIX + "duet/"
# Requests (start and stop get `done` or `error`, as every request does) and stream messages.
START = PREFIX + "start"    # <sid> [key value]...
STOP = PREFIX + "stop"      # <sid>
NOTE = PREFIX + "note"      # <sid> <beat:f> <pitch> <velocity>          (no reply)
CLOCK = PREFIX + "clock"    # <sid> <beat:f> <tempo:f> <playing>         (no reply)
RESEND = PREFIX + "resend"  # <sid> <answer> <chunk>                     (that chunk again)
# From the bridge.
ANSWER = PREFIX + "answer"  # <sid> <answer> <chunk> <n_chunks> <start:f> <length:f> (<pitch> <offset:f> <duration:f> <velocity>)*
CUT = PREFIX + "cut"        # <sid> <answer> <beat:f>
NOTICE = PREFIX + "notice"  # <sid> <answer> <text>: once a session for each distinct text
ERROR = PREFIX + "error"    # <sid> <code> <message>: an answer failed or the session is unknown; it stays open
MODE = PREFIX + "mode"      # in the models reply: <id> <mode> <tool> <n_params> <help>
PARAM = PREFIX + "param"    # in the models reply: as /bridge/param, the mode in the tool's place
REPLIES = {ANSWER, CUT, NOTICE, ERROR, MODE, PARAM}

# 4 values of 4 bytes plus 4 type tags a note: 20 bytes. 50 notes, a 64-byte id and the rest of
# the message stay near 1150 bytes (tests/test_duet_wire.py checks the largest).
CHUNK_NOTES = 50
NOTE_FIELDS = 4


def chunk_count(answer: Answer) -> int:
    return max(1, math.ceil(len(answer.notes) / CHUNK_NOTES))


def answer_chunk(sid: str, answer: Answer, chunk: int) -> bytes:
    notes = answer.notes[chunk * CHUNK_NOTES:(chunk + 1) * CHUNK_NOTES]
    flat = [v for n in notes for v in (n.pitch, n.start - answer.start, n.duration, n.velocity)]
    return P.message(ANSWER, sid, answer.number, chunk, chunk_count(answer), answer.start,
                     answer.end - answer.start, *flat)


def answer_messages(sid: str, answer: Answer) -> list[bytes]:
    return [answer_chunk(sid, answer, c) for c in range(chunk_count(answer))]


def cut_message(sid: str, cut: Cut) -> bytes:
    return P.message(CUT, sid, cut.number, cut.beat)


def notice_message(sid: str, notice: Notice) -> bytes:
    return P.message(NOTICE, sid, notice.number, P.truncate(notice.text, MAX_MESSAGE_BYTES))


def error_message(sid: str, code: str, text: str) -> bytes:
    """`/bridge/duet/error`: something about a session's stream, not the final reply to a request."""
    return P.message(ERROR, sid, code, P.truncate(text, MAX_MESSAGE_BYTES))


def decode_chunk(args: Sequence[Any]) -> tuple[int, int, int, float, float, list[Timed]]:
    """(answer, chunk, n_chunks, start, length, notes) from an answer message's arguments after the id."""
    if len(args) < 5 or (len(args) - 5) % NOTE_FIELDS:
        raise ClipError(f"an answer chunk holds 5 values and groups of {NOTE_FIELDS}, got {len(args)} values")
    number, chunk, n_chunks = (P.as_int(k, v) for k, v in zip(("answer", "chunk", "chunk count"), args))
    start, length = P.as_float("start", args[3]), P.as_float("length", args[4])
    notes = [Timed(P.as_int("pitch", args[i]), start + P.as_float("offset", args[i + 1]),
                   P.as_float("duration", args[i + 2]), P.as_int("velocity", args[i + 3]))
             for i in range(5, len(args), NOTE_FIELDS)]
    return number, chunk, n_chunks, start, length, notes


def describe(rid: str) -> list[bytes]:
    """The modes and their parameters for the `models` reply, after the tools."""
    out = []
    for mode in MODES.values():
        out.append(P.message(MODE, rid, mode.name, mode.tool, len(mode.params), mode.help))
        out += [P.message(PARAM, rid, *P.param_args(mode.name, p.to_dict())) for p in mode.params]
    return out
