"""A real bridge server on loopback with a deterministic fake model store, for the example tests.

The SuperCollider, TouchOSC, Python-example and AbletonOSC tests all need a server whose
answers they can predict; `Fake` (a test double, only here) answers every tool by fixed rules,
so a test computes the expected notes with `expected(tool, clips, params)` instead of trusting
what came back.
"""
from __future__ import annotations

import asyncio
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pythonosc.osc_message import OscMessage

from bridge import protocol as P
from bridge.bundle import Bundle
from bridge.clip import Clip, Note, TimeSignature
from bridge.model_store import Loaded, ModelStore
from bridge.server import BridgeServer
from bridge.tools import TOOLS, ToolContext


CHORD_NOTICE = "the melody model follows one line: it heard the top note of each chord"


class Fake:
    """Deterministic stand-in for every model.

    generate:    `variations` clips of `bars` bars of the context's meter and tempo; one note per
                 beat, pitch 60 + variation, off-beat starts for odd variations (float checks).
    continue:    the primer, then one note of pitch 72 + variation at the primer's end; without
                 the primer (include_primer off, as the Duet asks), the continuation alone as the
                 real model returns it: `length` bars from 0, a note of pitch 72 + variation on
                 every beat, half a beat long. Notes starting together get the real melody
                 model's notice (`CHORD_NOTICE`): on one 16th.
    interpolate: `steps` clips as long as A, one note: A's first pitch + step.
    groove:      the input's notes, velocity 90, every other note 0.03 beats late.
    drumify:     a kick (36) at every input note's start.
    harmonize:   the first input's notes, each with a bass note two octaves below.
    """

    def generate(self, clips: list[Clip], params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        context = clips[0] if clips else Clip()
        ctx.report(0.5, "sampling")
        length = params["bars"] * context.beats_per_bar
        return [Clip([Note(60 + v, b + 0.125 * (v % 2), 0.5, 100 - v) for b in range(int(length))], length,
                     context.tempo, context.time_signature, context.scale, f"generate {v + 1}")
                for v in range(params["variations"])]

    def continue_clip(self, clip: Clip, params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        if len({round(n.start * 4) for n in clip.notes}) < len(clip.notes):  # on one 16th, as the model reads it
            ctx.notice(CHORD_NOTICE)
        added = params["length"] * clip.beats_per_bar
        if not params["include_primer"]:
            return [clip.with_notes([Note(72 + v, float(b), 0.5, 90) for b in range(int(added))], length=added,
                                    name=f"{clip.name} continued {v + 1}") for v in range(params["variations"])]
        return [clip.with_notes(list(clip.notes) + [Note(72 + v, clip.length, 1.0, 90)], length=clip.length + added,
                                name=f"{clip.name} continued {v + 1}") for v in range(params["variations"])]

    def interpolate(self, a: Clip, b: Clip, params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        first = a.sorted_notes()[0].pitch
        return [Clip([Note(first + s, 0.0, 1.0, 100)], a.length, a.tempo, a.time_signature, None, f"step {s}")
                for s in range(params["steps"])]

    def groove(self, clip: Clip, params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        notes = [Note(n.pitch, n.start + 0.03 * (i % 2), n.duration, 90) for i, n in enumerate(clip.sorted_notes())]
        return [clip.with_notes(notes, name=f"{clip.name} grooved")]

    def drumify(self, clip: Clip, params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        return [clip.with_notes([Note(36, n.start, 0.25, 100) for n in clip.notes], name="drums")]

    def harmonize(self, clips: list[Clip], params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        notes = list(clips[0].notes)
        return [clips[0].with_notes(notes + [Note(n.pitch - 24, n.start, n.duration, n.velocity) for n in notes],
                                    name="harmonized")]


# Test doubles take a clip in any meter with a grid, as a meter-aware bundle trained in all of them would.
ANY_METER = {"hparams": {"meter": True},
             "meters": [f"{n}/{d}" for d in (1, 2, 4, 8, 16) for n in range(1, 25)]}


def fake_store() -> ModelStore:
    def loaded(kind: str) -> Loaded:
        config = {"name": f"fake-{kind}", "kind": kind, "tools": list(TOOLS), "model_class": "fake",
                  **ANY_METER}
        return Loaded(Bundle(Path(config["name"]), config, {}), Fake())

    return ModelStore(loaded=[loaded("melody"), loaded("drums"), loaded("chorale")])


def expected(tool: str, clips: list[Clip], params: dict[str, Any] | None = None) -> list[Clip]:
    """What the server answers for this request: the fake run through the real tool entry point."""
    return TOOLS[tool](list(clips), dict(params or {}), ToolContext(fake_store()))


DRUMS = Clip([Note(36, 0.0, 0.25, 110), Note(42, 0.5, 0.25, 70), Note(38, 1.0, 0.25, 100),
              Note(42, 1.5, 0.25, 70), Note(36, 2.0, 0.25, 110), Note(38, 3.0, 0.25, 100)],
             4.0, 96.0, TimeSignature(4, 4), None, "Beat")
MELODY = Clip([Note(60 + (i * 5) % 12, i * 0.5, 0.5, 80 + i) for i in range(40)], 20.0, 110.0,
              TimeSignature(5, 4), None, "Riff")


@contextmanager
def running_server(**kwargs: Any) -> Iterator[BridgeServer]:
    """A BridgeServer on a free loopback port, run by an event loop in a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = BridgeServer("127.0.0.1", port=0, store=kwargs.pop("store", fake_store()), **kwargs)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class OscPeer:
    """A bare UDP socket talking to the bridge, as TouchOSC or a hardware controller would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def send(self, address: str, *args: Any) -> None:
        self.sock.sendto(P.message(address, *args), ("127.0.0.1", self.port))

    def until_final(self, rid: str, timeout: float = 5.0) -> list[tuple[str, list]]:
        """Replies for `rid` up to and including its `done` or `error`; other replies are skipped."""
        out = []
        self.sock.settimeout(timeout)
        while True:
            try:
                msg = OscMessage(self.sock.recv(65536))
            except socket.timeout:
                raise AssertionError(f"no final reply for {rid}; got {out}") from None
            if msg.params[:1] == [rid]:
                out.append((msg.address, msg.params))
                if msg.address in (P.DONE, P.ERROR):
                    return out

    def close(self) -> None:
        self.sock.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
