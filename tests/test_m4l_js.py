"""Run the Max for Live JavaScript tests (`node --test m4l/tests/`) against a real bridge server.

The server runs on loopback with a fake model store (a test double, only here): `Fake` answers
every tool with notes a test can predict from its input, so m4l/tests/device.test.js and
miditool.test.js, which open the built .amxd files in the Max/Live simulator (maxsim.js, lom.js),
check exactly what lands in the simulated Live set. The port reaches node as MB_BRIDGE_PORT.
"""
import asyncio
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from bridge.bundle import Bundle
from fake_bridge import ANY_METER, CHORD_NOTICE
from bridge.clip import Clip, Note
from bridge.model_store import Loaded, ModelStore
from bridge.server import BridgeServer
from bridge.tools import TOOLS

REPO = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")
LEAD_TESTED = 0.3  # seconds; m4l/tests/duet.test.js reads it as MB_DUET_LEAD


class Fake:
    """Deterministic stand-in for every model; m4l/tests/device.test.js relies on these rules.

    generate:    `variations` clips of `bars` bars of the context's meter; one note per beat,
                 pitch 60 + variation index + the context scale's root (0 without a scale).
    continue:    the primer, then one note of pitch 72 + variation index at the primer's end;
                 length grows by `length` bars. Without the primer (the Duet): the continuation
                 alone, `length` bars from 0, a note of pitch 72 + variation on every beat, and
                 for a phrase with notes starting together the melody model's notice, CHORD_NOTICE.
    interpolate: `steps` clips as long as the shorter input, one note: A's first pitch + step.
    groove:      the input's notes with velocity 90.
    drumify:     a kick (36) at every input note's start.
    """

    def generate(self, clips, params, ctx):
        context = clips[0] if clips else Clip()
        ctx.report(0.5, "sampling")
        length = params["bars"] * context.beats_per_bar
        base = 60 + (context.scale.root if context.scale else 0)
        return [Clip([Note(base + v, float(b), 0.5, 100) for b in range(int(length))], length, context.tempo,
                     context.time_signature, context.scale, f"generate {v + 1}") for v in range(params["variations"])]

    def continue_clip(self, clip, params, ctx):
        added = params["length"] * clip.beats_per_bar
        if not params["include_primer"]:
            if len({round(n.start * 4) for n in clip.notes}) < len(clip.notes):  # on one 16th, as the model reads it
                ctx.notice(CHORD_NOTICE)
            return [clip.with_notes([Note(72 + v, float(b), 0.5, 90) for b in range(int(added))], length=added)
                    for v in range(params["variations"])]
        return [clip.with_notes(list(clip.notes) + [Note(72 + v, clip.length, 1.0, 90)], length=clip.length + added)
                for v in range(params["variations"])]

    def interpolate(self, a, b, params, ctx):
        length = min(a.length, b.length)
        first = a.sorted_notes()[0].pitch
        return [Clip([Note(first + s, 0.0, 1.0, 100)], length, a.tempo, a.time_signature)
                for s in range(params["steps"])]

    def groove(self, clip, params, ctx):
        return [clip.with_notes([Note(n.pitch, n.start, n.duration, 90) for n in clip.notes])]

    def drumify(self, clip, params, ctx):
        return [clip.with_notes([Note(36, n.start, 0.25, 100) for n in clip.notes])]


def fake_store() -> ModelStore:
    def loaded(kind):
        config = {"name": f"fake-{kind}", "kind": kind, "tools": list(TOOLS), "model_class": "fake",
                  **ANY_METER}
        return Loaded(Bundle(Path(config["name"]), config, {}), Fake())

    return ModelStore(loaded=[loaded("melody"), loaded("drums")])


@pytest.fixture(scope="module")
def bridge_port():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = BridgeServer("127.0.0.1", port=0, store=fake_store())
    # The machine is shared with training jobs: MB Duet and MB Follow get their answers LEAD_TESTED
    # seconds ahead, not the default LEAD that bench/bench_duet.py measures.
    server.duet.lead = LEAD_TESTED
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield server.port
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.mark.skipif(NODE is None, reason="node is not installed: the Max for Live JavaScript tests need node 18+")
def test_m4l_javascript(bridge_port):
    env = {**os.environ, "MB_BRIDGE_PORT": str(bridge_port), "MB_DUET_LEAD": str(LEAD_TESTED)}
    files = sorted(str(p.relative_to(REPO)) for p in REPO.glob("m4l/tests/*.test.js"))
    assert files, "no m4l/tests/*.test.js files"
    done = subprocess.run([NODE, "--test", "--test-reporter=tap", *files], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    # Every scenario must have run against the server, none skipped for want of a port.
    assert "# skipped 0" in report, report
