"""Answers made by the tool table: Continue for the Duet, Drumify for Follow.

The session's `Call` goes through the tool's one entry point (`bridge.tools.Tool.__call__`), so
the answer is checked, sampled and placed exactly as a clip the user sends to the tool would be.
"""
from __future__ import annotations

from typing import Any

from bridge.clip import Clip
from bridge.duet.events import Call
from bridge.duet.session import Session
from bridge.tools import TOOLS, ToolContext


def make(session: Session, call: Call, store: Any) -> tuple[Clip, list[str]]:
    """The mode's tool run on the call, and its notices: blocking, a worker thread's job. The
    session places the result (`Session.answered`) on its own thread, where it knows of every
    cut so far."""
    ctx = ToolContext(store)
    results = TOOLS[session.mode.tool]([call.clip], call.given, ctx)
    return (results[0] if results else call.clip.with_notes([])), ctx.notices


def warm_up(session: Session, store: Any) -> None:
    """Answer a one-note phrase once, on a copy of the session: a missing model is reported when
    the session starts rather than at the first pause, and the first real answer does not pay
    for cold caches."""
    probe = type(session)(session.params, session.meter, session.tempo)
    probe.note(0.0, 60, 100)
    probe.note(1.0, 60, 0)
    now = probe.due(1.0, 0.0)
    call = probe.decide(now, 0.0)
    probe.answered(call, make(probe, call, store)[0], now)
