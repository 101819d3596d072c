"""AbletonOSC delivery and reading, against a stand-in that behaves as AbletonOSC does.

The first tests check the stand-in itself against AbletonOSC's documented quirks; then
`bridge.ableton.AbletonOSC` is driven directly; the rest send requests to a real bridge server,
as TouchOSC would (floats for numbers), and look at what landed in the set.
"""
import asyncio
import logging
import math
import random
import socket
import sys
import types

import pytest
from fake_ableton import MAX_DATAGRAM, FakeAbleton, LiveClip, LiveTrack
from fake_bridge import MELODY, OscPeer, expected, free_udp_port, running_server
from pythonosc.osc_message import OscMessage

from bridge import cli
from bridge import protocol as P
from bridge.ableton import REQUIRED, AbletonError, AbletonOSC
from bridge.clip import Clip, Note, TimeSignature
from bridge.live_requests import DELIVERED
from bridge.tools import TOOLS

BIG = Clip([Note(36 + i % 60, i * 0.25, 0.25, 1 + i % 127, i % 7 == 0) for i in range(450)], 112.5, 120.0,
           TimeSignature(4, 4), None, "Big")


def live_notes(clip: LiveClip) -> list[tuple]:
    return sorted((p, round(s, 4), round(d, 4), v, bool(m)) for p, s, d, v, m in clip.notes)


def clip_notes(clip: Clip) -> list[tuple]:
    return sorted((n.pitch, round(n.start, 4), round(n.duration, 4), n.velocity, n.mute) for n in clip.notes)


def ticks_used(live: FakeAbleton) -> int:
    """AbletonOSC ticks from the first message handled to the last."""
    ticks = [tick for *_, tick in live.received]
    return max(ticks) - min(ticks) + 1


@pytest.fixture
def live():
    with FakeAbleton(free_udp_port()) as fake:
        yield fake


def run(live: FakeAbleton, operation, timeout: float = 2.0):
    async def go():
        client = AbletonOSC(port=live.port, reply_port=live.reply_port, timeout=timeout)
        try:
            return await operation(client)
        finally:
            await client.close()

    return asyncio.run(go())


class Client:
    """A bare OSC client of the stand-in, listening where it replies."""

    def __init__(self, live: FakeAbleton) -> None:
        self.live = live
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", live.reply_port))
        self.sock.settimeout(2.0)

    def ask(self, address: str, *args) -> tuple[str, list]:
        self.sock.sendto(P.message(address, *args), ("127.0.0.1", self.live.port))
        msg = OscMessage(self.sock.recv(65536))
        return msg.address, msg.params

    def close(self) -> None:
        self.sock.close()


# The stand-in ---------------------------------------------------------------------------------

def test_the_stand_in_has_abletonoscs_quirks(live):
    live.tracks[0].slots[0] = LiveClip(4.0, [(127, 0.0, 1.0, 100.0, False), (0, 1.0, 1.0, 90.0, True)])
    live.tracks[0].slots[1] = LiveClip(64.0, [(40 + i % 40, i / 8, 0.125, 90.0, False) for i in range(500)])
    client = Client(live)
    try:
        # No range: pitch span 127 leaves out pitch 127 (AbletonOSC issue #190).
        assert client.ask("/live/clip/get/notes", 0, 0) == ("/live/clip/get/notes", [0, 0, 0, 1.0, 1.0, 90.0, True])
        assert client.ask("/live/clip/get/notes", 0, 0, 0, 128, 0.0, 4.0)[1][2:7] == [0, 1.0, 1.0, 90.0, True]
        # A reply over 9,216 bytes is refused by macOS; AbletonOSC reports a socket error (issue #88).
        address, args = client.ask("/live/clip/get/notes", 0, 1, 0, 128, 0.0, 64.0)
        assert address == "/live/error" and args[0].startswith("Socket error") and "Message too long" in args[0]
        # Live's bindings refuse a float where an int is due.
        address, args = client.ask("/live/clip/get/notes", 0, 0, 0.0, 128, 0.0, 4.0)
        assert address == "/live/error" and "did not match C++ signature" in args[0]
        # Getters echo track, slot and any extra argument; unknown addresses are errors.
        assert client.ask("/live/clip/get/length", 0, 0, 7) == ("/live/clip/get/length", [0, 0, 4.0, 7])
        assert client.ask("/live/clip/get/nothing", 0, 0) == ("/live/error", ["Unknown OSC address: /live/clip/get/nothing"])
    finally:
        client.close()
    assert all(size <= MAX_DATAGRAM for _, size in live.replies)


def test_the_stand_in_handles_one_batch_a_tick_and_stops_at_an_error():
    live = FakeAbleton(free_udp_port(), tick=0.5)  # a long first tick: all five are queued by then
    client = Client(live)
    try:
        for _ in range(3):
            client.sock.sendto(P.message("/live/song/get/tempo"), ("127.0.0.1", live.port))
        client.sock.sendto(P.message("/live/clip/get/length", 0, 5), ("127.0.0.1", live.port))  # empty slot: raises
        client.sock.sendto(P.message("/live/song/get/num_tracks"), ("127.0.0.1", live.port))
        replies = [OscMessage(client.sock.recv(65536)).address for _ in range(5)]
    finally:
        client.close()
        live.close()
    assert replies == ["/live/song/get/tempo"] * 3 + ["/live/error", "/live/song/get/num_tracks"]
    ticks = [tick for *_, tick in live.received]
    assert ticks[:4] == [ticks[0]] * 4 and ticks[4] == ticks[0] + 1  # the message after the error waits a tick


# Reading and writing ----------------------------------------------------------------------------

def test_write_fills_empty_slots_with_notes_name_colour_and_loop(live):
    live.tracks[0].slots[0] = LiveClip(4.0, name="keep")
    live.tracks[0].slots[2] = LiveClip(2.0, name="keep too")
    small = MELODY.with_notes(MELODY.notes[:3], name="Small")
    slots = run(live, lambda c: c.write_clips(0, 0, [BIG, small], 0xD88715))
    assert slots == [1, 3]
    written = live.tracks[0].slots[1]
    assert live_notes(written) == clip_notes(BIG)
    assert (written.name, written.color, written.looping, written.loop_start, written.loop_end, written.live_length()) == \
        ("Big", 0xD88715, True, 0.0, 112.5, 112.5)
    assert live_notes(live.tracks[0].slots[3]) == clip_notes(small)
    assert live.tracks[0].slots[0].name == "keep" and live.tracks[0].slots[2].name == "keep too"
    chunks = [size for address, _, size, _ in live.received if address == "/live/clip/add/notes"]
    assert len(chunks) == 4 and max(chunks) < 8192  # 450 notes in three chunks, 3 in one


def test_read_takes_the_sets_tempo_and_meter(live):
    live.tempo, live.signature = 93.5, (7, 8)
    live.tracks[0].slots[2] = LiveClip(7.0, [(64, 1.5, 0.5, 99.6, False), (60, 0.0, 1.0, 80.0, True),
                                             (67, -0.5, 0.25, 70.0, False), (127, 6.5, 0.5, 1.0, False)], name="Lead")
    live.tracks[0].slots[3] = LiveClip(3.5, [(50, 0.0, 3.5, 100.0, False)], name="")
    first, second = run(live, lambda c: c.read_clips(0, 2, 2))
    assert first == Clip((Note(60, 0.0, 1.0, 80, True), Note(64, 1.5, 0.5, 100), Note(127, 6.5, 0.5, 1)), 7.0, 93.5,
                         TimeSignature(7, 8), None, "Lead")  # the note before the clip start is left out
    assert second.notes == (Note(50, 0.0, 3.5, 100),) and second.length == 3.5
    assert ticks_used(live) <= 6  # song, clip properties, notes: a stage a tick (3), not a query a tick (15)


def dense_clip() -> tuple[LiveClip, list[Note]]:
    """2,000 notes, pitches 0-127, in a 4-bar loop from bar 2, plus notes outside the loop."""
    rng = random.Random(24)
    cells = rng.sample([(p, step) for p in range(1, 127) for step in range(256)], 1998) + [(0, 0), (127, 255)]
    start = 4.0  # bar 2 of 4/4
    inside = [(p, start + step / 16, (1 + i % 4) / 16, float(1 + i % 127), i % 11 == 0) for i, (p, step) in enumerate(cells)]
    outside = [(60, 3.5, 0.5, 100.0, False), (61, 20.0, 0.5, 100.0, False), (62, 24.0, 1.0, 100.0, False)]
    want = sorted((Note(p, t - start, d, int(v), m) for p, t, d, v, m in inside), key=lambda n: (n.start, n.pitch))
    return LiveClip(16.0, inside + outside, name="Hats", loop_start=start, start_marker=0.0), want


def test_a_dense_clip_with_pitch_127_and_a_loop_from_bar_2_reads_back_exactly(live):
    live.tracks[0].slots[0], want = dense_clip()
    (clip,) = run(live, lambda c: c.read_clips(0, 0))
    assert clip == Clip(tuple(want), 16.0, 120.0, TimeSignature(4, 4), None, "Hats")
    pages = [size for address, size in live.replies if address == "/live/clip/get/notes"]
    assert len(pages) >= 8 and max(pages) <= MAX_DATAGRAM  # 500-note bars refused, then asked in halves


def test_a_clip_is_read_from_its_loop_start_or_its_start_marker(live):
    notes = [(60, 1.0, 0.5, 100.0, False), (62, 2.0, 0.5, 100.0, False), (64, 3.5, 0.5, 100.0, False),
             (65, 6.0, 0.5, 100.0, False)]
    live.tracks[0].slots[0] = LiveClip(4.0, list(notes), loop_start=2.0, start_marker=3.0)
    live.tracks[0].slots[1] = LiveClip(8.0, list(notes), looping=False, loop_start=0.0, start_marker=1.0, end_marker=4.0)
    looped, unlooped = run(live, lambda c: c.read_clips(0, 0, 2))
    assert [(n.pitch, n.start) for n in looped.notes] == [(62, 0.0), (64, 1.5)] and looped.length == 4.0
    assert [(n.pitch, n.start) for n in unlooped.notes] == [(60, 0.0), (62, 1.0), (64, 2.5)] and unlooped.length == 3.0


def test_delivering_8_clips_takes_at_most_3_ticks_per_clip(live):
    track = live.tracks[0]
    track.slots = [LiveClip(1.0, name="keep") if s % 2 else None for s in range(16)]
    clips = [BIG.with_notes(BIG.notes[:100 + 40 * i], name=f"v{i}") for i in range(8)]
    assert run(live, lambda c: c.write_clips(0, 0, clips, 0)) == list(range(0, 16, 2))
    assert [live_notes(track.slots[s]) for s in range(0, 16, 2)] == [clip_notes(c) for c in clips]
    assert ticks_used(live) <= 3 * len(clips)


@pytest.mark.parametrize("setup, operation, message", [
    (lambda l: setattr(l.tracks[0], "midi", False), lambda c: c.write_clips(0, 0, [BIG], 0), "not a MIDI track"),
    (lambda l: l.tracks[0].slots.__setitem__(slice(0, 8), [LiveClip(1.0)] * 8),
     lambda c: c.write_clips(0, 5, [BIG], 0), "0 empty slot(s) from slot 5 on; 1 needed"),
    (lambda l: None, lambda c: c.write_clips(3, 0, [BIG], 0), "track 3 does not exist; the set has tracks 0-0"),
    (lambda l: None, lambda c: c.read_clips(0, 7, 2), "slot 8 does not exist"),
    (lambda l: None, lambda c: c.read_clips(0, 1), "track 0 slot 1 holds no clip"),
    (lambda l: (l.tracks[0].slots.__setitem__(0, LiveClip(4.0)), setattr(l.tracks[0], "midi", False)),
     lambda c: c.read_clips(0, 0), "holds an audio clip"),
    (lambda l: l.fail.update({"/live/clip/add/notes": "Invalid note"}), lambda c: c.write_clips(0, 0, [BIG], 0),
     "AbletonOSC: Error handling OSC message: Invalid note"),
    # AbletonOSC before 18 Nov 2023 has no start marker, and no get/notes range in the bridge's order.
    (lambda l: (l.tracks[0].slots.__setitem__(0, LiveClip(4.0)), l.removed.add("/live/clip/get/start_marker")),
     lambda c: c.read_clips(0, 0), f"does not know /live/clip/get/start_marker; the bridge needs {REQUIRED}"),
])
def test_problems_are_reported_with_their_reason(live, setup, operation, message):
    setup(live)
    with pytest.raises(AbletonError) as info:
        run(live, operation)
    assert info.value.code == "live_error" and message in str(info.value)


def test_silence_is_a_timeout_naming_the_abletonosc_version_needed():
    nobody = free_udp_port()
    with pytest.raises(AbletonError) as info:
        asyncio.run(AbletonOSC(port=nobody, reply_port=free_udp_port(), timeout=0.2).song_context())
    assert info.value.code == "live_timeout" and "/live/song/get/tempo" in str(info.value)
    assert "AbletonOSC from 18 Nov 2023 or later" in str(info.value)


def test_errors_of_other_programs_do_not_fail_the_bridge(live, caplog):
    """AbletonOSC sends /live/error to the IP that sent last: another program on the bridge's
    machine gets its errors to the bridge's port (AbletonOSC issue #73)."""
    live.tracks[0].slots[7] = LiveClip(4.0, [(60, 0.0, 1.0, 100.0, False), (127, 2.0, 1.0, 90.0, False)], name="In")

    between = {"/live/clip/add/notes"}

    def intrude(address: str, args: list) -> None:
        if address in between:  # another program's failing query, between the bridge's datagrams
            between.discard(address)
            live.interject(P.message("/live/clip/get/length", 0, 6), "127.0.0.1")

    live.on_message = intrude
    with caplog.at_level(logging.WARNING, "bridge.ableton"):
        assert run(live, lambda c: c.write_clips(0, 0, [BIG], 0)) == [0]
        between.add("/live/clip/get/notes")
        (clip,) = run(live, lambda c: c.read_clips(0, 7))
    assert live_notes(live.tracks[0].slots[0]) == clip_notes(BIG)
    assert [n.pitch for n in clip.notes] == [60, 127]
    assert sum("'NoneType' object has no attribute 'length'" in e for e in live.errors) == 2
    assert "came from another program" in caplog.text


def test_note_extras_that_abletonosc_cannot_carry_are_reported(live, caplog):
    extras = BIG.with_notes([Note(60, 0.0, 1.0, 100, False, 0.5, 10.0, 30), Note(62, 1.0, 1.0)])
    with caplog.at_level(logging.WARNING, "bridge.ableton"):
        run(live, lambda c: c.write_clips(0, 0, [extras], 0))
    assert "probability, velocity deviation or release velocity: 1 note(s)" in caplog.text


# Through the bridge server -----------------------------------------------------------------

@pytest.fixture
def bridge(live):
    with running_server(ableton=AbletonOSC(port=live.port, reply_port=live.reply_port, timeout=1.0)) as server:
        peer = OscPeer(server.port)
        yield peer
        peer.close()


def test_generate_into_live_uses_the_sets_tempo_and_meter(live, bridge):
    live.tempo, live.signature = 90.0, (3, 4)
    bridge.send("/bridge/generate", 1.0, "deliver", "live", "track", 0.0, "slot", 0.0, "variations", 2.0, "bars", 1.0)
    replies = bridge.until_final("1")
    assert [a for a, _ in replies if a != P.PROGRESS] == [P.ACK, DELIVERED, DELIVERED, P.DONE]  # no result chunks
    assert [args for a, args in replies if a == DELIVERED] == [["1", 0, 0, 0], ["1", 1, 0, 1]]
    assert replies[-1][1] == ["1", 2]
    want = expected("generate", [Clip((), 3.0, 90.0, TimeSignature(3, 4))], {"variations": 2, "bars": 1})
    for slot, clip in enumerate(want):
        assert clip.length == 3.0
        written = live.tracks[0].slots[slot]
        assert live_notes(written) == clip_notes(clip)
        assert (written.name, written.color, written.loop_end) == (clip.name, TOOLS["generate"].color, 3.0)


def test_continue_reads_a_live_clip_and_writes_after_it(live, bridge):
    live.tracks[0].slots[0] = LiveClip(4.0, [(60, 0.0, 1.0, 100.0, False), (62, 1.0, 1.0, 90.0, False)], name="Hook")
    bridge.send("/bridge/continue", "c", "input", "live", "track", 0, "slot", 0, "deliver", "live", "variations", 1)
    assert bridge.until_final("c")[-1] == (P.DONE, ["c", 1])
    primer = Clip((Note(60, 0.0, 1.0, 100), Note(62, 1.0, 1.0, 90)), 4.0, 120.0, TimeSignature(4, 4), None, "Hook")
    (want,) = expected("continue", [primer], {"variations": 1})
    assert live_notes(live.tracks[0].slots[1]) == clip_notes(want)
    assert math.isclose(live.tracks[0].slots[1].length, want.length)


def test_input_last_takes_the_clients_previous_result(bridge):
    bridge.send("/bridge/groove", "g0", "input", "last")
    assert bridge.until_final("g0")[-1][1][:2] == ["g0", "missing_input"]
    bridge.send("/bridge/generate", "g1", "variations", 2, "bars", 1)
    assert bridge.until_final("g1")[-1] == (P.DONE, ["g1", 2])
    bridge.send("/bridge/groove", "g2", "input", "last")
    replies = bridge.until_final("g2")
    assembly = P.ClipAssembly(4, 1000)
    for address, args in replies:
        if address == P.RESULT:
            assembly.add_header(args[1:])
        elif address == P.RESULT_NOTES:
            assembly.add_chunk(args[1:])
    first = expected("generate", [], {"variations": 2, "bars": 1})[0]
    assert [clip_notes(c) for c in assembly.clips()] == [clip_notes(c) for c in expected("groove", [first])]


def test_live_errors_come_back_with_the_request_id(live, bridge):
    live.fail["/live/clip/add/notes"] = "Invalid note"
    bridge.send("/bridge/generate", "e1", "deliver", "live", "variations", 1)
    address, args = bridge.until_final("e1")[-1]
    assert (address, args[:2]) == (P.ERROR, ["e1", "live_error"]) and "Invalid note" in args[2]
    bridge.send("/bridge/continue", "e2", "input", "live", "slot", 5)
    address, args = bridge.until_final("e2")[-1]
    assert (address, args[:2]) == (P.ERROR, ["e2", "live_error"]) and "slot 5 holds no clip" in args[2]
    bridge.send("/bridge/generate", "e3", "track", 1)
    assert bridge.until_final("e3")[-1][1][:2] == ["e3", "bad_param"]


def test_no_abletonosc_is_a_timeout_error():
    with running_server(ableton=AbletonOSC(port=free_udp_port(), reply_port=free_udp_port(), timeout=0.3)) as server:
        peer = OscPeer(server.port)
        peer.send("/bridge/generate", "t1", "deliver", "live")
        address, args = peer.until_final("t1")[-1]
        peer.close()
    assert (address, args[:2]) == (P.ERROR, ["t1", "live_timeout"]) and REQUIRED in args[2]


def test_serve_takes_the_abletonosc_ports(monkeypatch):
    calls = []
    fake = types.ModuleType("bridge.serving")
    fake.serve = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "bridge.serving", fake)
    assert cli.main(["serve", "--live-port", "11500", "--live-reply-port", "11501"]) == 0
    assert cli.main(["serve"]) == 0
    live = calls[0]["ableton"]
    assert (live.host, live.port, live.reply_port) == ("127.0.0.1", 11500, 11501)
    assert "ableton" not in calls[1]  # the server's own default: 11000 in, 11001 back
