"""The wire format on its own: typed messages, clip chunks, datagram sizes and SLIP framing."""
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_message import OscMessage

from bridge import protocol as P
from bridge.clip import Clip, ClipError, Note, Scale, TimeSignature


def type_tags(data: bytes) -> str:
    end = data.index(b",")
    return data[end + 1:data.index(b"\0", end)].decode()


def assemble(messages: list[bytes], max_notes: int = 100_000) -> list[Clip]:
    assembly = P.ClipAssembly(max_clips=16, max_notes=max_notes)
    for data in messages:
        msg = OscMessage(data)
        (assembly.add_header if msg.address in (P.CLIP, P.RESULT) else assembly.add_chunk)(msg.params[1:])
    assert assembly.missing() == []
    return assembly.clips()


def worst_case_clip(n_notes: int) -> Clip:
    note = Note(127, P.MAX_BEATS, P.MAX_BEATS, 127, True, 1.0, -127.0, 127)
    return Clip([note] * n_notes, P.MAX_BEATS, 999.0, TimeSignature(99, 32), Scale(11, "harmonic_minor"), "𝄞" * 300)


def test_message_sends_only_i_f_s():
    data = P.message("/x", True, 3, 2.5, "s", np.int64(7), np.float32(0.5))
    assert type_tags(data) == "iifsif"
    assert OscMessage(data).params == [1, 3, 2.5, "s", 7, 0.5]
    for bad in (None, b"blob", (1, 2, 3, 4), [1]):
        with pytest.raises(TypeError):
            P.message("/x", bad)
    with pytest.raises(ValueError):
        P.message("/x", 2**31)


def test_every_datagram_of_a_worst_case_clip_stays_under_1400_bytes():
    rid = "r" * P.MAX_ID_BYTES
    clip = worst_case_clip(1000)
    for header, notes in ((P.CLIP, P.NOTES), (P.RESULT, P.RESULT_NOTES)):
        messages = P.clip_messages(header, notes, rid, clip, 15, 16)
        assert len(messages) == 1 + math.ceil(1000 / P.CHUNK_NOTES)
        assert max(len(m) for m in messages) < P.MAX_DATAGRAM
        assert set("".join(type_tags(m) for m in messages)) <= set("ifs")
    missing = P.format_missing([(1, c) for c in range(10_000)])
    assert len(P.message(P.ERROR, rid, "missing_input", missing)) < P.MAX_DATAGRAM
    assert len(P.truncate("𝄞" * 300).encode()) <= P.MAX_NAME_BYTES


def test_clip_round_trips_through_chunks_exactly():
    notes = [Note(p, p * 0.125, 0.25 + p / 64, 1 + p % 127, p % 2 == 0, (p % 5) / 4, -p / 2, p % 128)
             for p in range(128)] * 2
    clips = [Clip(notes, 96.0, 133.5, TimeSignature(7, 8), Scale(9, "dorian"), "Lead ♯"),
             Clip((), 3.5, 60.0, TimeSignature(3, 4), None, "")]
    messages = [m for i, c in enumerate(clips) for m in P.clip_messages(P.CLIP, P.NOTES, "7", c, i, 2)]
    assert assemble(messages[::-1]) == clips  # any arrival order


def test_decoded_notes_are_ordinary_notes():
    """Notes read off the wire are made as bare tuples, skipping Note's constructor; nothing
    else may tell them apart: same type, values, hash, repr, a bool mute, and no field set."""
    sent = [Note(60 + k % 12, k * 0.25, 0.25, 100, k % 2 == 0, 0.5, -1.0, 64) for k in range(70)]
    flat = [v for note in sent for v in P.note_args(note)]  # 70 notes: longer than a chunk we send
    got = P.decode_notes(flat)
    assert got == sent and [hash(n) for n in got] == [hash(n) for n in sent]
    assert [repr(n) for n in got] == [repr(n) for n in sent] and type(got[0].mute) is bool
    assert all(type(n) is Note for n in got)
    with pytest.raises(AttributeError):
        got[0].pitch = 61
    assert P.decode_notes([60, 0, 1, 100, 0, 1, 0, 64]) == [Note(60, 0.0, 1.0)]  # ints for floats: converted


def test_a_receiver_of_results_reads_note_chunks_straight_into_notes():
    """parse(notes=True) gives a chunk's notes apart, equal to those the value-by-value path
    makes, with the head as params; anything it cannot read exactly goes the usual way."""
    notes = [Note(60 + k % 12, k * 0.25, 0.25, 100, k % 3 == 0, 0.5, -1.0, 64) for k in range(40)]
    clip = Clip(notes, 16.0)
    for address in (P.RESULT_NOTES, P.NOTES):
        for chunk in range(2):
            data = P.note_chunk(address, "r9", clip, 2, chunk)
            plain, fast = P.parse(data), P.parse(data, notes=True)
            assert plain.notes is None and fast.params == plain.params[:4] == ["r9", 2, chunk, 2]
            assert fast.notes == P.decode_notes(plain.params[4:]) == notes[chunk * 30:(chunk + 1) * 30]
            assert all(type(n) is Note and type(n.mute) is bool for n in fast.notes)
            assert P.decode_packet(data, notes=True)[0][0].notes == fast.notes
    usual = [
        P.message(P.RESULT_NOTES, "r", 0, 0, 1, *P.note_args(notes[0])[:4], 2, *P.note_args(notes[0])[5:]),  # mute 2
        P.message(P.RESULT_NOTES, "r", 0, 0, 1, 60, P.MAX_BEATS * 2, 1.0, 100, 0, 1.0, 0.0, 64),  # past MAX_BEATS
        P.message(P.RESULT_NOTES, "r", 0, 0, 1, *map(float, P.note_args(notes[0]))),  # all floats, as TouchOSC
        P.message(P.RESULT_NOTES, "r", 0, 0, 1),  # an empty chunk
        P.message(P.RESULT_NOTES, "r", 0, 0, 1, *P.note_args(notes[0])) + b"\0\0\0\0",  # bytes past the notes
        P.message(P.PREFIX + "answer", "r", 0, 0, 1, *P.note_args(notes[0])),  # the same shape at another address
    ]
    for data in usual:
        assert P.parse(data, notes=True).notes is None
    assert P.parse(usual[0], notes=True).params == P.parse(usual[0]).params
    with pytest.raises(ClipError):  # the usual path still refuses what it refused
        P.decode_notes(P.parse(usual[1], notes=True).params[4:])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 4096), st.integers(1, 512), st.integers(1, 127),
                          st.booleans(), st.integers(0, 4), st.integers(-127, 127), st.integers(0, 127)),
                max_size=100),
       st.text(max_size=40), st.integers(1, 999), st.integers(1, 99), st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_random_clips_round_trip(raw_notes, name, tempo, num, den):
    # Values exact in float32, as every time and probability on the wire is.
    notes = [Note(p, s / 64, d / 64, v, m, pr / 4, float(dev), rel) for p, s, d, v, m, pr, dev, rel in raw_notes]
    clip = Clip(notes, 64.0, float(tempo), TimeSignature(num, den), None, P.truncate(name))
    sent = replace(clip, name=clip.name.replace("\x00", ""))  # OSC text cannot hold NUL
    assert assemble(P.clip_messages(P.RESULT, P.RESULT_NOTES, "x", clip, 0, 1)) == [sent]


def test_nul_in_text_is_dropped_and_shifts_no_argument():
    packet = P.message("/x", "ab\x00cd", 7, 1.5)
    assert OscMessage(packet).params == ["abcd", 7, 1.5]


@pytest.mark.parametrize("args, fragment", [
    ([0, 1, 10, 1, 4.0, 120.0, 4, 4], "takes 9 values"),
    ([0, 1, 20_000, 1, 4.0, 120.0, 4, 4, ""], "note count"),
    ([0, 1, -1, 0, 4.0, 120.0, 4, 4, ""], "note count"),
    ([0, 1, 10, 11, 4.0, 120.0, 4, 4, ""], "chunk count"),
    ([0, 1, 10, 0, 4.0, 120.0, 4, 4, ""], "chunk count"),
    ([2, 2, 0, 0, 4.0, 120.0, 4, 4, ""], "clip index"),
    ([0, 9, 0, 0, 4.0, 120.0, 4, 4, ""], "clip count"),
    ([0, 1, 0, 0, 1e30, 120.0, 4, 4, ""], "length"),
    ([0, 1, 0, 0, "4", 120.0, 4, 4, ""], "length must be a number"),
    ([0, 1, 0, 0, 4.0, 120.0, 4, 4, 5], "name must be text"),
    (["a", 1, 0, 0, 4.0, 120.0, 4, 4, ""], "clip index must be a number"),
])
def test_bad_headers_are_refused_before_allocating(args, fragment):
    with pytest.raises(ClipError, match=fragment):
        P.ClipAssembly(max_clips=2, max_notes=10_000).add_header(args)


def test_bad_chunks_are_refused():
    assembly = P.ClipAssembly(max_clips=2, max_notes=100)
    assembly.add_header([0, 1, 2, 1, 4.0, 120.0, 4, 4, "c"])
    note = [60, 0.0, 1.0, 100, 0, 1.0, 0.0, 64]
    with pytest.raises(ClipError, match="groups of 8"):
        assembly.add_chunk([0, 0, 1, *note, 1])
    with pytest.raises(ClipError, match="chunks announced"):
        assembly.add_chunk([0, 1, 1, *note])
    with pytest.raises(ClipError, match="more than the 2 announced"):
        assembly.add_chunk([0, 0, 1, *note * 3])
    with pytest.raises(ClipError, match="pitch must be a number"):
        assembly.add_chunk([0, 0, 1, "C4", *note[1:]])
    with pytest.raises(ClipError, match="within"):
        assembly.add_chunk([0, 0, 1, 60, 1e30, *note[2:]])
    with pytest.raises(ClipError, match="out of range"):
        assembly.add_chunk([1, 0, 1, *note])
    assembly.add_chunk([0, 0, 1, 60.4, 0.0, 1.0, 99.6, 1.0, 1.0, 0.0, 64.0])  # TouchOSC floats round
    assembly.add_chunk([0, 0, 1, *note, 61, float("nan"), 1.0, 100, 0, 1.0, 0.0, 64])
    [clip] = assembly.clips()
    assert clip.notes[0] == Note(60, 0.0, 1.0, 100, False, 1.0, 0.0, 64)
    with pytest.raises(ClipError, match="start must be a finite number"):
        clip.validate()


def test_missing_lists_headers_and_chunks():
    assembly = P.ClipAssembly(max_clips=2, max_notes=100)
    assert assembly.missing(at_least=1) == [(0, -1)]
    assembly.add_chunk([1, 2, 3, 60, 0.0, 1.0, 100, 0, 1.0, 0.0, 64])
    assembly.add_header([0, 2, 40, 2, 4.0, 120.0, 4, 4, ""])
    assert assembly.missing() == [(0, 0), (0, 1), (1, -1)]
    assert P.parse_missing(P.format_missing(assembly.missing())) == assembly.missing()
    with pytest.raises(P.ProtocolError):
        P.parse_missing("0:x")


def test_request_ids_and_key_values():
    assert P.request_id(5) == "5" and P.request_id(5.0) == "5" and P.request_id("a") == "a"
    for bad in (None, True, 1.5, "", "x" * 65, b"x"):
        with pytest.raises(P.ProtocolError):
            P.request_id(bad)
    assert P.key_values(["a", 1, "b", "x"]) == {"a": 1, "b": "x"}
    for bad in (["a"], [1, 2], ["a", 1, "a", 2]):
        with pytest.raises(P.ProtocolError):
            P.key_values(bad)


def test_slip_round_trip_split_and_double_end():
    packets = [bytes([P.END, P.ESC, 1, P.ESC_END, P.ESC_ESC]), b"/bridge/ping\0\0\0\0,s\0\0x\0\0\0", bytes(range(256))]
    stream = b"".join(P.slip_encode(p) for p in packets)
    assert stream.count(bytes([P.END, P.END])) == 2  # double-END framing between packets
    decoder = P.SlipDecoder()
    out = [frame for i in range(0, len(stream), 7) for frame in decoder.feed(stream[i:i + 7])]
    assert out == packets
    # Single-END framing (END only after each packet) decodes too.
    single = b"".join(P.slip_encode(p)[1:] for p in packets)
    assert list(P.SlipDecoder().feed(single)) == packets


def test_slip_refuses_bad_escapes_and_huge_frames():
    with pytest.raises(P.ProtocolError, match="escape"):
        list(P.SlipDecoder().feed(bytes([P.ESC, 0x41, P.END])))
    with pytest.raises(P.ProtocolError, match="longer"):
        list(P.SlipDecoder(max_frame=10).feed(b"x" * 11))


def test_is_loopback():
    assert P.is_loopback("127.0.0.1") and P.is_loopback("::1") and P.is_loopback("localhost")
    assert not P.is_loopback("0.0.0.0") and not P.is_loopback("192.168.1.2") and not P.is_loopback("example.org")


def _python_osc_bytes(address: str, *args) -> bytes:
    """The same message built by python-osc, the reference for the struct encoder."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address)
    for arg in args:
        kind = {int: "i", float: "f", str: "s"}[type(arg)]
        builder.add_arg(arg, kind)
    return builder.build().dgram


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20).map(lambda s: "/" + s.replace("\x00", "")),
       st.lists(st.one_of(st.integers(-2**31, 2**31 - 1),
                          st.floats(width=32, allow_nan=False),
                          st.text(max_size=12).map(lambda s: s.replace("\x00", ""))), max_size=12))
def test_struct_encoder_and_fast_parser_agree_with_python_osc(address, args):
    data = P.message(address, *args)
    assert data == _python_osc_bytes(address, *args)
    parsed = P.parse(data)
    reference = OscMessage(data)
    assert (parsed.address, parsed.params) == (reference.address, reference.params)


def test_fast_parser_refuses_what_python_osc_refuses_and_reads_other_types():
    good = P.message("/x", "id", 3, 1.5)
    for cut in range(1, len(good)):
        try:
            reference = OscMessage(good[:cut])
        except Exception:
            with pytest.raises(P.ProtocolError):
                P.parse(good[:cut])
        else:
            assert P.parse(good[:cut]).params == reference.params
    other = _python_osc_bytes("/x", 1).replace(b",i\0\0", b",T\0\0")[:-4]  # a True: python-osc's path
    assert P.parse(other).params == [True]


def test_note_chunk_packs_notes_as_the_typed_path_would():
    notes = [Note(60 + i, i * 0.5, 0.25, 90, i % 2 == 0, 0.5, -3.0, 10) for i in range(P.CHUNK_NOTES + 5)]
    clip = Clip(notes, 32.0)
    for chunk in range(2):
        part = notes[chunk * P.CHUNK_NOTES:(chunk + 1) * P.CHUNK_NOTES]
        flat = [v for n in part for v in P.note_args(n)]
        assert P.note_chunk(P.NOTES, "r", clip, 0, chunk) == P.message(P.NOTES, "r", 0, chunk, 2, *flat)
    odd = Clip([Note(np.int64(60), 0, 1)], 4.0)  # a NumPy pitch and int times: typed value by value
    assert P.parse(P.note_chunk(P.NOTES, "r", odd, 0, 0)).params[4:7] == [60, 0, 1]
