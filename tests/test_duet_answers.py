"""Answers made by the real tools on random-weight models (no shipped bundle needed), and the wire."""
import numpy as np
import pytest
from groove_helpers import model as groovae
from test_continue import random_model

from bridge import protocol as P
from bridge.clip import Scale, TimeSignature
from bridge.drums import GM_DRUM_MAP
from bridge.duet import answers, wire
from bridge.duet.events import Answer, Timed
from bridge.duet.modes import DUET, FOLLOW
from bridge.duet.session import DuetSession, FollowSession
from bridge.model_store import ModelStore
from bridge.tools import ModelNotInstalled


class Store:
    """Every tool and type gets this one model, whatever the meter (a meter-aware test double)."""

    def __init__(self, model):
        self.model = model

    def require(self, tool, kind, name=None, time_signature=None):
        return self.model


def test_a_duet_answer_keeps_the_phrases_key_and_meter():
    melody = random_model("melody", seed=4)
    session = DuetSession(DUET.resolve({"temperature": 1.5, "seed": 3, "length": 2}), TimeSignature(3, 4), 90.0)
    a_minor = [69, 72, 76, 74, 71, 69, 64, 65]
    for i, pitch in enumerate(a_minor):
        session.note(3.0 + i * 0.5, pitch, 80)
        session.note(3.4 + i * 0.5, pitch, 0)
    now = session.due(0.0, 0.15)
    call = session.decide(now, 0.15)
    assert melody.grid_for(call.clip).bar_steps == 12, "the model reads the phrase on the 3/4 grid"
    answer = session.answered(call, answers.make(session, call, Store(melody))[0], now)
    assert answer.start == call.start == 9.0 and answer.end == 15.0  # release 6.9 + wait 1 + lead
    assert answer.notes, "the answer holds notes"
    assert all(Scale(9, "minor").contains(n.pitch) for n in answer.notes), "in the phrase's key"
    assert all(answer.start <= n.start < answer.end and n.end <= answer.end + 1e-9 for n in answer.notes)
    steps = [round((n.start - answer.start) * 4, 6) for n in answer.notes]
    assert all(float(s).is_integer() for s in steps), "on the 16th grid from the answer's first beat"


def test_follow_drums_come_from_drumify_in_the_next_bar():
    session = FollowSession(FOLLOW.resolve({"seed": 1, "temperature": 0.8}), TimeSignature(4, 4), 180.0)
    for b in range(8):
        session.note(b * 1.0, 60, 90)
        session.note(b + 0.5, 60, 0)
    call = session.decide(7.7, 0.3)
    answer = session.answered(call, answers.make(session, call, Store(groovae("tap")))[0], 7.7)
    assert (answer.start, answer.end) == (8.0, 12.0) and answer.notes
    assert all(8.0 <= n.start < 12.0 for n in answer.notes)
    assert {n.pitch for n in answer.notes} <= {GM_DRUM_MAP.pitch(k) for k in range(9)}


def test_a_missing_model_is_found_by_the_warm_up():
    for session in (DuetSession(DUET.resolve({}), TimeSignature(4, 4), 120.0),
                    FollowSession(FOLLOW.resolve({}), TimeSignature(4, 4), 120.0)):
        with pytest.raises(ModelNotInstalled):
            answers.warm_up(session, ModelStore(loaded=[]))


def test_the_largest_answer_chunk_fits_a_datagram_and_times_survive_float32():
    start = float(2 ** 21)  # a bar line 12 days into a 120 bpm transport
    notes = tuple(Timed(127, start + i / 7, 1 / 3, 127) for i in range(wire.CHUNK_NOTES + 3))
    answer = Answer(2 ** 31 - 1, start, start + 32.0, notes)
    messages = wire.answer_messages("x" * P.MAX_ID_BYTES, answer)
    assert len(messages) == 2 and max(len(m) for m in messages) < P.MAX_DATAGRAM
    decoded = [wire.decode_chunk(P.parse(m).params[1:]) for m in messages]
    got = [n for *_, chunk in decoded for n in chunk]
    assert decoded[0][:5] == (2 ** 31 - 1, 0, 2, start, 32.0)
    err = np.abs(np.array([g.start - n.start for g, n in zip(got, notes)]))
    assert len(got) == len(notes) and err.max() < 1e-6, "offsets from an exact start keep sub-microbeat timing"
    empty = wire.answer_messages("s", Answer(1, 4.0, 8.0, ()))
    assert len(empty) == 1 and wire.decode_chunk(P.parse(empty[0]).params[1:])[5] == [], "silence is answered too"
