"""The Duet and Follow sessions on transport beats alone: phrase ends, where answers start, what the
tool is asked, interrupts, and Follow's bars. No sockets or clocks: beats are given by hand."""
import math

import pytest

from bridge.clip import Clip, Note, TimeSignature
from bridge.duet.modes import DUET, FOLLOW
from bridge.duet.session import MAX_PHRASE_BARS, Call, Cut, DuetSession, FollowSession, Timed

LEAD = 0.2  # beats: 0.1 s at 120 bpm


def duet(meter=TimeSignature(4, 4), **given):
    return DuetSession(DUET.resolve(given), meter, 120.0)


def play(session, notes):
    """(pitch, start, end) in beats, played in time order; returns the cuts."""
    events = sorted([(s, p, 90) for p, s, _ in notes] + [(e, p, 0) for p, _, e in notes], key=lambda e: (e[0], e[2]))
    return [cut for beat, pitch, velocity in events for cut in session.note(beat, pitch, velocity)]


def decide_when_due(session, lead=LEAD):
    due = session.due(0.0, lead)
    assert session.decide(due - 0.01, lead) is None, "nothing is decided before it is due"
    return session.decide(due, lead)


def test_a_pause_of_wait_beats_ends_the_phrase_and_the_answer_starts_on_the_next_beat():
    session = duet(wait=1.0, length=2)
    play(session, [(60, 0.0, 0.5), (62, 0.5, 1.0), (64, 1.0, 2.3)])
    assert session.due(2.3, LEAD) == pytest.approx(4.0 - LEAD)  # silence from 2.3, + 1 beat, + lead -> beat 4
    call = decide_when_due(session)
    assert (call.number, call.start, call.end, call.offset) == (1, 4.0, 12.0, 0.0)
    assert call.clip.length == 4.0 and call.clip.time_signature == TimeSignature(4, 4)
    assert [(n.pitch, n.start, n.duration) for n in call.clip.notes] == [(60, 0.0, 0.5), (62, 0.5, 0.5),
                                                                          (64, 1.0, pytest.approx(1.3))]
    assert session.due(4.0, LEAD) is None, "the phrase is answered: the next one starts with the next note"


def test_quantize_bar_starts_the_answer_on_a_bar_line():
    session = duet(wait=0.5, quantize="bar")
    play(session, [(60, 4.0, 5.0)])
    call = decide_when_due(session)
    assert call.start == 8.0 and call.clip.length == 4.0, "read from the bar line before the phrase"


def test_a_held_note_keeps_the_phrase_open():
    session = duet()
    session.note(0.0, 60, 90)
    assert session.due(10.0, LEAD) is None and session.decide(10.0, LEAD) is None
    session.note(10.0, 60, 0)
    assert session.due(10.0, LEAD) == pytest.approx(12.0 - LEAD)


def test_the_tool_is_asked_for_one_continuation_in_the_phrases_key_unless_given_one():
    a_minor = [(69, 0, 1), (72, 1, 2), (76, 2, 3), (74, 3, 4), (71, 4, 5), (69, 5, 7)]
    call = decide_when_due(play_and_return(duet(temperature=0.5, seed=7), a_minor))
    assert call.given == {"variations": 1, "include_primer": False, "length": 2, "temperature": 0.5, "type": "auto",
                          "seed": 7, "scale_root": 9, "scale_mode": "minor", "drum_map": DUET.resolve({})["drum_map"]}
    given = decide_when_due(play_and_return(duet(scale_root=2, scale_mode="dorian"), a_minor)).given
    assert (given["scale_root"], given["scale_mode"]) == (2, "dorian")
    drums = decide_when_due(play_and_return(duet(type="drums"), [(36, 0, 0.25), (38, 1, 1.25)])).given
    assert "scale_root" not in drums, "drums have no key"


def play_and_return(session, notes):
    play(session, notes)
    return session


def test_the_phrase_keeps_its_meter_and_beats():
    waltz = duet(TimeSignature(3, 4), wait=1.0)
    play(waltz, [(60, 3.0, 4.0), (64, 4.0, 5.0), (67, 5.0, 5.5)])
    call = decide_when_due(waltz)
    assert call.clip.time_signature == TimeSignature(3, 4) and call.start == 7.0
    assert call.clip.notes[0].start == 0.0, "read from the bar line at beat 3"
    assert call.end == 7.0 + 2 * 3
    jig = duet(TimeSignature(6, 8), wait=0.5)  # beats are dotted quarters
    play(jig, [(60, 0.0, 1.0)])
    assert decide_when_due(jig).start == 1.5 * math.ceil((1.0 + 0.5 + LEAD) / 1.5)


def test_a_long_phrase_is_read_from_its_last_bars():
    session = duet()
    play(session, [(60 + i % 12, float(i), i + 0.5) for i in range(60)])
    call = decide_when_due(session)
    assert call.start == 61.0 and call.clip.length == 29.0, "from the first bar line within 8 bars"
    assert call.clip.length <= MAX_PHRASE_BARS * 4
    assert [n.start for n in call.clip.notes] == [float(b) for b in range(28)]


def test_a_late_wake_moves_the_answer_to_the_next_beat_it_can_meet():
    session = duet()
    play(session, [(60, 0.0, 1.0)])
    call = session.decide(2.95, LEAD)  # due at 2.8: woken 0.15 beats late
    assert call.start == 4.0


def test_a_note_during_an_answer_cuts_it_there():
    session = duet(length=1)
    play(session, [(60, 0.0, 1.0)])
    call = decide_when_due(session)  # answer 1: beats 3-7
    result = Clip([Note(72, float(b), 0.5, 90) for b in range(4)], 4.0)
    assert session.note(5.25, 64, 90) == [Cut(1, 5.25)]
    assert session.note(5.5, 65, 90) == [], "cut once"
    answer = session.answered(call, result, now=2.9)
    assert [(n.start, n.duration) for n in answer.notes] == [(3.0, 0.5), (4.0, 0.5), (5.0, 0.25)]
    assert answer.end == 5.25
    assert session.note(8.0, 66, 90) == [], "an answer that is over is not cut"


def test_a_note_before_the_answer_starts_cancels_it():
    session = duet()
    play(session, [(60, 0.0, 1.0)])
    call = decide_when_due(session)
    assert session.note(2.9, 62, 90) == [Cut(1, 2.9)]
    assert session.answered(call, Clip([Note(72, 0.0, 1.0)], 8.0), now=2.9) is None


def test_notes_whose_time_has_passed_are_dropped():
    session = duet()
    play(session, [(60, 0.0, 1.0)])
    call = decide_when_due(session)
    answer = session.answered(call, Clip([Note(72, float(b), 0.5) for b in range(8)], 8.0), now=4.5)
    assert [n.start for n in answer.notes] == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


def test_a_transport_that_jumps_back_starts_afresh():
    session = duet()
    play(session, [(60, 30.0, 31.0)])
    session.note(2.0, 62, 90)  # looped back
    session.note(2.5, 62, 0)
    call = decide_when_due(session)
    assert [n.pitch for n in call.clip.notes] == [62]


def test_follow_makes_each_next_bar_from_the_last_two():
    session = FollowSession(FOLLOW.resolve({"temperature": 0.5}), TimeSignature(4, 4), 180.0)
    play(session, [(36, 0.0, 0.5), (38, 2.0, 2.5), (36, 4.0, 4.5), (38, 6.5, 7.0)])
    assert session.due(7.0, LEAD) == pytest.approx(8.0 - LEAD)
    call = session.decide(8.0 - LEAD, LEAD)
    assert (call.start, call.end, call.offset) == (8.0, 12.0, 4.0)
    assert call.clip.length == 8.0 and [n.start for n in call.clip.notes] == [0.0, 2.0, 4.0, 6.5]
    assert call.given == {"variations": 1, "temperature": 0.5, "drum_map": FOLLOW.resolve({})["drum_map"]}
    drums = Clip([Note(36, s, 0.25) for s in (0.0, 2.0, 4.0, 6.5)], 8.0)
    answer = session.answered(call, drums, now=8.0 - LEAD)
    assert [n.start for n in answer.notes] == [8.0, 10.5], "the drums of the last bar, a bar later"
    assert session.due(8.0, LEAD) == pytest.approx(12.0 - LEAD), "every bar while notes are in the window"
    assert session.decide(12.0 - LEAD, LEAD).start == 12.0
    assert session.due(16.5, LEAD) is None, "two bars of silence: Follow rests until the next note"


def test_follow_reads_a_held_note_and_one_bar():
    session = FollowSession(FOLLOW.resolve({"bars": 1}), TimeSignature(3, 4), 120.0)
    session.note(1.0, 40, 90)
    call = session.decide(3.0 - LEAD, LEAD)
    assert (call.start, call.offset, call.clip.length) == (3.0, 0.0, 3.0)
    assert [(n.start, n.duration) for n in call.clip.notes] == [(1.0, pytest.approx(2.0 - LEAD))]


def test_answer_notes_are_timed_on_the_transport():
    call = Call(3, Clip(), {}, 16.0, 20.0, 4.0)
    session = FollowSession(FOLLOW.resolve({}), TimeSignature(4, 4), 120.0)
    answer = session.answered(call, Clip([Note(36, 3.0, 0.25), Note(36, 4.0, 9.0), Note(42, 4.5, 0.25, mute=True),
                                          Note(38, 7.75, 0.5)], 8.0), now=15.9)
    assert answer.notes == (Timed(36, 16.0, 4.0, 100), Timed(38, 19.75, 0.25, 100))
