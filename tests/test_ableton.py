"""AbletonOSC delivery and reading, against a simulated Live set behind AbletonOSC's addresses.

The first tests drive `bridge.ableton.AbletonOSC` directly; the rest send requests to a real
bridge server, as TouchOSC would (floats for numbers), and look at what landed in the set.
"""
import asyncio
import math
import sys
import types

import pytest
from fake_ableton import FakeAbleton, LiveClip
from fake_bridge import MELODY, OscPeer, expected, free_udp_port, running_server

from bridge import cli
from bridge import protocol as P
from bridge.ableton import AbletonError, AbletonOSC
from bridge.clip import Clip, Note, TimeSignature
from bridge.live_requests import DELIVERED
from bridge.tools import TOOLS

BIG = Clip([Note(36 + i % 60, i * 0.25, 0.25, 1 + i % 127, i % 7 == 0) for i in range(450)], 112.5, 120.0,
           TimeSignature(4, 4), None, "Big")


def live_notes(clip: LiveClip) -> list[tuple]:
    return sorted((p, round(s, 4), round(d, 4), v, bool(m)) for p, s, d, v, m in clip.notes)


def clip_notes(clip: Clip) -> list[tuple]:
    return sorted((n.pitch, round(n.start, 4), round(n.duration, 4), n.velocity, n.mute) for n in clip.notes)


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


def test_write_fills_empty_slots_with_notes_name_colour_and_loop(live):
    live.tracks[0].slots[0] = LiveClip(4.0, name="keep")
    live.tracks[0].slots[2] = LiveClip(2.0, name="keep too")
    small = MELODY.with_notes(MELODY.notes[:3], name="Small")
    slots = run(live, lambda c: c.write_clips(0, 0, [BIG, small], 0xD88715))
    assert slots == [1, 3]
    written = live.tracks[0].slots[1]
    assert live_notes(written) == clip_notes(BIG)
    assert (written.name, written.color, written.looping, written.loop_start, written.loop_end, written.length) == \
        ("Big", 0xD88715, True, 0.0, 112.5, 112.5)
    assert live_notes(live.tracks[0].slots[3]) == clip_notes(small)
    assert live.tracks[0].slots[0].name == "keep" and live.tracks[0].slots[2].name == "keep too"
    chunks = [size for address, _, size in live.received if address == "/live/clip/add/notes"]
    assert len(chunks) == 4 and max(chunks) < 8192  # 450 notes in three chunks, 3 in one


def test_read_takes_the_sets_tempo_and_meter(live):
    live.tempo, live.signature = 93.5, (7, 8)
    live.tracks[0].slots[2] = LiveClip(7.0, [(64, 1.5, 0.5, 99.6, False), (60, 0.0, 1.0, 80.0, True),
                                             (67, -0.5, 0.25, 70.0, False)], name="Lead")
    live.tracks[0].slots[3] = LiveClip(3.5, [(50, 0.0, 3.5, 100.0, False)], name="")
    first, second = run(live, lambda c: c.read_clips(0, 2, 2))
    assert first == Clip((Note(60, 0.0, 1.0, 80, True), Note(64, 1.5, 0.5, 100)), 7.0, 93.5,
                         TimeSignature(7, 8), None, "Lead")  # the note before the clip start is left out
    assert second.notes == (Note(50, 0.0, 3.5, 100),) and second.length == 3.5


@pytest.mark.parametrize("setup, operation, message", [
    (lambda l: setattr(l.tracks[0], "midi", False), lambda c: c.write_clips(0, 0, [BIG], 0), "not a MIDI track"),
    (lambda l: l.tracks[0].slots.__setitem__(slice(0, 8), [LiveClip(1.0)] * 8),
     lambda c: c.write_clips(0, 5, [BIG], 0), "0 empty slot(s) from slot 5 on; 1 needed"),
    (lambda l: None, lambda c: c.write_clips(3, 0, [BIG], 0), "track 3 does not exist; the set has tracks 0-0"),
    (lambda l: None, lambda c: c.read_clips(0, 7, 2), "slot 8 does not exist"),
    (lambda l: None, lambda c: c.read_clips(0, 1), "track 0 slot 1 holds no clip"),
    (lambda l: l.fail.update({"/live/clip/add/notes": "Invalid note"}), lambda c: c.write_clips(0, 0, [BIG], 0),
     "AbletonOSC: Error handling OSC message: Invalid note"),
])
def test_problems_are_reported_with_their_reason(live, setup, operation, message):
    setup(live)
    with pytest.raises(AbletonError) as info:
        run(live, operation)
    assert info.value.code == "live_error" and message in str(info.value)


def test_silence_is_a_timeout_not_a_hang():
    nobody = free_udp_port()
    with pytest.raises(AbletonError) as info:
        asyncio.run(AbletonOSC(port=nobody, reply_port=free_udp_port(), timeout=0.2).song_context())
    assert info.value.code == "live_timeout" and "/live/song/get/tempo" in str(info.value)


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
    assert (address, args[:2]) == (P.ERROR, ["t1", "live_timeout"])


def test_serve_takes_the_abletonosc_ports(monkeypatch):
    calls = []
    fake = types.ModuleType("bridge.server")
    fake.serve = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "bridge.server", fake)
    assert cli.main(["serve", "--live-port", "11500", "--live-reply-port", "11501"]) == 0
    assert cli.main(["serve"]) == 0
    live = calls[0]["ableton"]
    assert (live.host, live.port, live.reply_port) == ("127.0.0.1", 11500, 11501)
    assert "ableton" not in calls[1]  # the server's own default: 11000 in, 11001 back
