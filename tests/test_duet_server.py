"""The Duet stream through a real bridge on loopback, with a simulated player in real time.

The player keeps its own transport (beats from a start time at a fixed tempo) and sends each note
with its beat, as a sequencer or Max's `when` stamps them. The bridge serves the deterministic
fake models of fake_bridge.py: Continue answers a note of pitch 72 on every beat of the
continuation, Drumify a kick (36) at every note of its input. So each test knows the exact
answer, the beat it must start on, and that it must arrive before that beat. The machine these
run on is shared with training jobs, so the bridge decides LEAD_TESTED seconds ahead instead of
its default LEAD (bench/bench_duet.py measures that one).
"""
import asyncio
import math

import pytest
from fake_bridge import OscPeer, running_server

from bridge import protocol as P
from bridge.client import BridgeError
from bridge.duet import wire
from bridge.duet.client import DuetClient
from bridge.duet.modes import MODES
from bridge.limits import Limits
from bridge.model_store import ModelStore


LEAD_TESTED = 0.25


@pytest.fixture(scope="module")
def bridge():
    with running_server() as server:
        server.duet.lead = LEAD_TESTED
        yield server


class Transport:
    def __init__(self, tempo: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.tempo = tempo
        self.t0 = self.loop.time() + 0.05

    def wall(self, beat: float) -> float:
        return self.t0 + beat * 60.0 / self.tempo

    def beat(self) -> float:
        return (self.loop.time() - self.t0) * self.tempo / 60.0

    async def until(self, beat: float) -> None:
        await asyncio.sleep(max(0.0, self.wall(beat) - self.loop.time()))


async def perform(client: DuetClient, transport: Transport, notes) -> None:
    """Play (pitch, start, end) notes at their beats, offs before ons at the same beat."""
    events = sorted([(s, 1, p) for p, s, _ in notes] + [(e, 0, p) for p, _, e in notes])
    for beat, on, pitch in events:
        await transport.until(beat)
        client.note(beat, pitch, 100 if on else 0)


def answer_start(last_release: float, wait: float, tempo: float, step: float = 1.0) -> float:
    """Where the bridge must start an answer: the first beat at least `wait` + the lead after the pause."""
    return step * math.ceil((last_release + wait + LEAD_TESTED * tempo / 60.0) / step - 1e-6)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_phrases_with_pauses_get_answers_on_the_next_beat_once_each(bridge):
    async def main():
        async with DuetClient(port=bridge.port, sid="phrases", timeout=5) as client:
            await client.start(tempo=300.0, wait=0.5, length=1)
            played = []
            client.on_notes = lambda number, notes: played.extend(notes)
            transport = Transport(300.0)
            phrases = [[(60, 0.0, 0.5), (62, 0.5, 1.0), (64, 1.0, 1.75)], [(67, 8.0, 9.0), (65, 9.5, 10.0)],
                       [(64, 16.0, 16.25)]]
            answers = []
            for phrase in phrases:
                await perform(client, transport, phrase)
                answers.append(await client.answers.get())
            await client.stop()
            return transport, answers, played

    transport, answers, played = run(main())
    starts = [answer_start(release, 0.5, 300.0) for release in (1.75, 10.0, 16.25)]
    assert [a.number for a in answers] == [1, 2, 3]
    assert [a.start for a in answers] == starts == [4.0, 12.0, 18.0]
    for answer in answers:
        assert answer.end == answer.start + 4.0
        assert [(n.pitch, n.start, n.duration) for n in answer.notes] == [(72, answer.start + b, 0.5, ) for b in range(4)]
        assert answer.completed_at < transport.wall(answer.start), "the answer is in the client before its first beat"
    assert sorted((n.start, n.pitch) for n in played) == sorted((n.start, n.pitch) for a in answers for n in a.notes)
    assert len(played) == 12, "every note once"


def test_a_note_during_the_answer_cuts_it_and_starts_the_next_phrase(bridge):
    async def main():
        async with DuetClient(port=bridge.port, sid="interrupt", timeout=5) as client:
            await client.start(tempo=240.0, wait=0.5, length=2)
            transport = Transport(240.0)
            await perform(client, transport, [(60, 0.0, 1.0), (62, 1.0, 2.0)])
            first = await client.answers.get()
            await perform(client, transport, [(64, 5.5, 6.0)])
            second = await client.answers.get()
            await client.stop()
            return first, second, client.cuts

    first, second, cuts = run(main())
    assert (first.start, first.end) == (4.0, 12.0)
    assert [c.beat for c in cuts] == [5.5] and cuts[0].number == 1
    assert [n.start for n in first.notes if n.start < cuts[0].beat] == [4.0, 5.0], "what still plays"
    assert (second.number, second.start) == (2, answer_start(6.0, 0.5, 240.0)) == (2, 8.0)


RHYTHM = (0.0, 1.5, 2.0)  # beats of the bar the Follow player plays; the last beat, inside the lead, stays free


def test_follow_has_each_next_bar_before_it_starts_at_180_bpm(bridge):
    async def main():
        async with DuetClient(port=bridge.port, sid="follow", timeout=5) as client:
            await client.start(mode="follow", tempo=180.0)
            transport = Transport(180.0)
            await perform(client, transport, [(60 + i, 4.0 * bar + at, 4.0 * bar + at + 0.5)
                                              for bar in range(3) for i, at in enumerate(RHYTHM)])
            await transport.until(16.0)
            await client.stop()
            answers = []
            while not client.answers.empty():
                answers.append(client.answers.get_nowait())
            return transport, answers

    transport, answers = run(main())
    assert [a.start for a in answers] == [4.0, 8.0, 12.0, 16.0][:len(answers)] and len(answers) >= 3
    for answer in answers:
        assert answer.completed_at < transport.wall(answer.start), f"bar at beat {answer.start} came late"
        played_bar = [answer.start - 4.0 + at for at in RHYTHM] if answer.start <= 12.0 else []
        assert [(n.pitch, n.start) for n in answer.notes] == [(36, s + 4.0) for s in played_bar]


def test_a_stopped_transport_answers_nothing(bridge):
    async def main():
        async with DuetClient(port=bridge.port, sid="stopped", timeout=5) as client:
            await client.start(tempo=240.0, wait=0.25)
            transport = Transport(240.0)
            await perform(client, transport, [(60, 0.0, 0.5)])
            client.clock(0.6, 240.0, playing=False)
            await asyncio.sleep(0.6)
            silent = client.answers.empty()
            client.clock(8.0, 240.0, playing=True)
            client.note(8.0, 62, 90)
            client.note(8.25, 62, 0)
            answer = await client.answers.get()
            await client.stop()
            return silent, answer

    silent, answer = run(main())
    assert silent, "the phrase before the stop is not answered"
    assert answer.start == answer_start(8.25, 0.25, 240.0)


def test_start_refuses_what_it_cannot_play_and_the_stream_names_unknown_sessions(bridge):
    async def main():
        async with DuetClient(port=bridge.port, sid="bad", timeout=5) as client:
            outcomes = []
            for params in ({"mode": "solo"}, {"meter": "7/32"}, {"wait": 20}, {"bars": 2}, {"tempo": 0}):
                try:
                    await client.start(**params)
                except BridgeError as exc:
                    outcomes.append((exc.code, exc.message))
            client.note(0.0, 60, 100)
            await asyncio.sleep(0.1)
            with pytest.raises(BridgeError, match="unknown_request"):
                await client.stop()
            return outcomes, client.errors

    outcomes, errors = run(main())
    assert [code for code, _ in outcomes] == ["bad_param"] * 5
    assert "mode must be one of duet, follow, got 'solo'" in outcomes[0][1]
    assert "7/32 has no whole-step grid" in outcomes[1][1]
    assert "wait must be 0.25-8" in outcomes[2][1] and "unknown parameter 'bars'" in outcomes[3][1]
    assert errors and errors[0][0] == "unknown_request", "a note for a session never opened"


def test_a_missing_model_is_reported_when_the_session_starts():
    with running_server(store=ModelStore(loaded=[])) as server:
        async def main():
            async with DuetClient(port=server.port, sid="nomodel", timeout=5) as client:
                await client.start()

        with pytest.raises(BridgeError) as caught:
            run(main())
    assert caught.value.code == "model_not_installed"


def test_models_lists_the_modes_and_their_parameters(bridge):
    async def main():
        async with DuetClient(port=bridge.port, timeout=5) as client:
            return await client.models()

    info = run(main())
    assert list(info["modes"]) == list(MODES)
    for name, mode in MODES.items():
        assert info["modes"][name]["tool"] == mode.tool
        assert [p["name"] for p in info["modes"][name]["params"]] == [p.name for p in mode.params]
    wait = info["modes"]["duet"]["params"][1]
    assert (wait["type"], wait["min"], wait["max"], wait["default"]) == ("float", 0.25, 8.0, 1.0)
    assert info["modes"]["duet"]["params"][4]["choices"] == list(MODES["duet"].params[4].choices)


def test_a_resent_chunk_is_the_same_and_a_duplicate_is_played_once(bridge):
    peer = OscPeer(bridge.port)
    try:
        peer.send(wire.START, "r1", "tempo", 600.0, "wait", 0.25, "length", 8)
        assert peer.until_final("r1")[-1][0] == P.DONE
        peer.send(wire.NOTE, "r1", 0.0, 60, 100)
        peer.send(wire.NOTE, "r1", 0.25, 60, 0)
        peer.sock.settimeout(5)
        from pythonosc.osc_message import OscMessage
        first = OscMessage(peer.sock.recv(65536))
        peer.send(wire.RESEND, "r1", 1, 0)
        again = OscMessage(peer.sock.recv(65536))
        peer.send(wire.RESEND, "r1", 9, 0)
        error = OscMessage(peer.sock.recv(65536))
    finally:
        peer.close()
    assert first.address == wire.ANSWER and again.dgram == first.dgram
    assert (error.address, error.params[1]) == (wire.ERROR, "unknown_request")

    async def main():
        async with DuetClient(port=bridge.port, sid="r1", timeout=5) as client:
            played = []
            client.on_notes = lambda number, notes: played.extend(notes)
            client._dispatch(first.address, first.params)
            client._dispatch(first.address, first.params)
            return played, client.answers.qsize()

    played, done = run(main())
    assert done == 1 and len(played) == 32, "8 bars of a note a beat, played once"


def test_sessions_are_bounded_and_an_idle_one_makes_room():
    with running_server(limits=Limits(duet_sessions=1, duet_idle=0.3)) as server:
        async def main():
            async with DuetClient(port=server.port, sid="first", timeout=5) as first, \
                    DuetClient(port=server.port, sid="second", timeout=5) as second:
                await first.start()
                with pytest.raises(BridgeError, match="busy: 1 duet sessions are open"):
                    await second.start()
                await asyncio.sleep(0.4)  # the first falls silent for longer than duet_idle
                await second.start()
                first.note(0.0, 60, 90)
                await asyncio.sleep(0.2)
                return first.errors

        errors = run(main())
    assert [code for code, _ in errors] == ["unknown_request"], "the idle session made room and is gone"


def test_a_notice_about_the_playing_comes_once_a_session(bridge):
    """Chords played into a melody Duet: the answer's tool says it heard only their top notes.
    The player hears that once, with the first answer it concerns, not with every answer."""
    from fake_bridge import CHORD_NOTICE

    async def main():
        async with DuetClient(port=bridge.port, sid="chords", timeout=5) as client:
            await client.start(tempo=300.0, wait=0.5, length=1)
            heard = []
            client.on_notice = heard.append
            transport = Transport(300.0)
            for at in (0.0, 8.0):
                await perform(client, transport, [(60, at, at + 1.0), (64, at, at + 1.0), (67, at + 1.0, at + 1.5)])
                await client.answers.get()
            await asyncio.sleep(0.05)
            await client.stop()
            return heard, client.notices

    heard, notices = run(main())
    assert heard == notices and [(n.number, n.text) for n in notices] == [(1, CHORD_NOTICE)]
