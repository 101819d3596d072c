"""The SuperCollider class (examples/supercollider/MagentaBridge.sc) run by a headless sclang.

sclang talks to a real bridge with the fake model store: generate (no input), continue (a
40-note clip, uploaded in two chunks) and groove round trips. It prints every note it put back
together and every event of the Pbind built from it; the test compares both with what the fake
model answers for the same request. sclang runs without a window (QT_QPA_PLATFORM=offscreen)
and without its user config (a fresh XDG home: no startup file, no server boot).
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fake_bridge import CHORD_NOTICE, DRUMS, MELODY, expected, running_server

from bridge.clip import Clip

SCLANG = shutil.which("sclang")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "supercollider"
pytestmark = pytest.mark.skipif(SCLANG is None, reason="sclang is not installed (apt-get install "
                                                       "--no-install-recommends supercollider-language)")

REQUESTS = [  # tag, tool, input clips, parameters
    ("gen", "generate", [], {"variations": 2, "bars": 1}),
    ("cont", "continue", [MELODY], {"variations": 2, "length": 1}),
    ("groove", "groove", [DRUMS], {}),
]

SCRIPT = """
var bridge = MagentaBridge("127.0.0.1", "MB_BRIDGE_PORT".getenv.asInteger, 10);
var cond = Condition.new;
var report = { |tag, clips|
    clips.do { |clip, i|
        var stream = MagentaBridge.pattern(clip).asStream;
        var event;
        ("CLIP % % % % % % %".format(tag, i, clip[\\length], clip[\\tempo], clip[\\tsNum], clip[\\tsDen], clip[\\name])).postln;
        clip[\\notes].do { |n| ("NOTE % % %".format(tag, i, n.join(" "))).postln };
        while { (event = stream.next(())).notNil } {
            ("EVENT % % % % %".format(tag, i, event[\\midinote], event[\\dur], event[\\sustain])).postln;
        };
    };
    cond.unhang;
};
SystemClock.sched(40, { "TIMEOUT".postln; 1.exit });
fork {
%REQUESTS%
    "FINISHED".postln;
    0.exit;
};
"""


def sc_clip(clip: Clip) -> str:
    notes = ", ".join(f"[{n.pitch}, {n.start!r}, {n.duration!r}, {n.velocity}, {int(n.mute)}]" for n in clip.notes)
    return (f"(name: \"{clip.name}\", length: {clip.length!r}, tempo: {clip.tempo!r}, tsNum: "
            f"{clip.time_signature.numerator}, tsDen: {clip.time_signature.denominator}, notes: [{notes}])")


def sc_request(tag: str, tool: str, clips: list[Clip], params: dict) -> str:
    pairs = ", ".join(f"\\{k}, {v}" for k, v in params.items())
    return (f"    bridge.run(\\{tool}, [{', '.join(sc_clip(c) for c in clips)}], [{pairs}], "
            f"{{ |clips| report.(\"{tag}\", clips) }}, "
            f"{{ |code, text| (\"ERROR {tag} \" ++ code + text).postln; cond.unhang }});\n    cond.hang;\n")


def run_sclang(tmp_path: Path, port: int, text: str | None = None) -> str:
    """Run a script (by default the round trips of REQUESTS) in a headless sclang; its output."""
    script = tmp_path / "roundtrip.scd"
    script.write_text(text or SCRIPT.replace("%REQUESTS%", "".join(sc_request(*r) for r in REQUESTS)))
    config = tmp_path / "sclang_conf.yaml"
    config.write_text(f"includePaths:\n    - {EXAMPLE}\nexcludePaths: []\npostInlineWarnings: false\n")
    env = {**os.environ, "MB_BRIDGE_PORT": str(port), "QT_QPA_PLATFORM": "offscreen",
           "QTWEBENGINE_DISABLE_SANDBOX": "1",  # Qt WebEngine refuses to start as root otherwise
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    done = subprocess.run([SCLANG, "-D", "-l", str(config), "-u", "0", str(script)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=90)
    assert "FINISHED" in done.stdout, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout


def parse(stdout: str) -> dict:
    out: dict = {}
    for line in stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind in ("CLIP", "NOTE", "EVENT"):
            tag, index, *values = rest.split(" ")
            out.setdefault((kind, tag, int(index)), []).append(values)
    return out


def pattern_events(clip: Clip) -> list[tuple]:
    """(midinote, dur, sustain) the Pbind should play: a rest first if the clip starts later."""
    notes = sorted((n for n in clip.notes if not n.mute), key=lambda n: (n.start, n.pitch))
    starts = [n.start for n in notes] + [clip.length]
    lead = [("rest", notes[0].start, 1.0)] if notes[0].start > 0 else []
    return lead + [(n.pitch, starts[i + 1] - n.start, n.duration) for i, n in enumerate(notes)]


def close(a: str, b: float) -> bool:
    return abs(float(a) - b) < 1e-4


def test_generate_continue_and_groove_round_trips(tmp_path):
    with running_server() as server:
        printed = parse(run_sclang(tmp_path, server.port))
    assert not any(key[0] == "ERROR" for key in printed)
    for tag, tool, clips, params in REQUESTS:
        want = expected(tool, clips, params)
        for i, clip in enumerate(want):
            (header,) = printed[("CLIP", tag, i)]
            length, tempo, num, den, *name = header
            assert close(length, clip.length) and close(tempo, clip.tempo)
            assert (int(num), int(den), " ".join(name)) == (clip.time_signature.numerator,
                                                             clip.time_signature.denominator, clip.name)
            notes = printed[("NOTE", tag, i)]
            assert len(notes) == len(clip.notes)
            for got, note in zip(notes, clip.sorted_notes()):
                assert [int(got[0]), int(got[3]), int(got[4])] == [note.pitch, note.velocity, int(note.mute)]
                assert close(got[1], note.start) and close(got[2], note.duration)
            events = printed[("EVENT", tag, i)]
            assert len(events) == len(pattern_events(clip))
            for got, (midinote, dur, sustain) in zip(events, pattern_events(clip)):
                assert got[0] == str(midinote) and close(got[1], dur) and close(got[2], sustain)
        assert ("CLIP", tag, len(want)) not in printed


DUET = """
var clock = TempoClock(4);
var duet = MagentaDuet("127.0.0.1", "MB_BRIDGE_PORT".getenv.asInteger, clock, \\duet, "scduet");
duet.noteAction = { |pitch, velocity, duration, answer|
    ("PLAY % % % % %".format(answer, pitch, velocity, duration, thisThread.beats)).postln };
duet.answerAction = { |n, start, notes| ("ANSWER % % %".format(n, start, notes.size)).postln };
duet.errorAction = { |code, text| ("ERROR % %".format(code, text)).postln };
duet.noticeAction = { |text, answer| ("NOTICE % %".format(answer, text)).postln };
SystemClock.sched(40, { "TIMEOUT".postln; 1.exit });
duet.start([\\wait, 0.5, \\length, 1], {
    var t = clock.beats.ceil + 2;
    ("PHRASE " ++ t).postln;
    clock.schedAbs(t, { duet.noteOn(60, 90); duet.noteOn(55, 70); nil });
    clock.schedAbs(t + 0.5, { duet.noteOff(60); duet.noteOff(55); duet.noteOn(64, 80); nil });
    clock.schedAbs(t + 1, { duet.noteOff(64); nil });
    clock.schedAbs(t + 4.25, { duet.noteOn(67, 90); nil });
    clock.schedAbs(t + 4.5, { duet.noteOff(67); nil });
    clock.schedAbs(t + 11, { duet.stop; "FINISHED".postln; 0.exit; nil });
});
"""


def test_duet_answers_play_on_the_clock_at_the_bridges_beats_and_a_note_stops_one(tmp_path):
    """240 bpm; the bridge decides a second ahead (1 beat), the fake Continue answers a note a beat
    and notices the chord that opens the first phrase."""
    with running_server() as server:
        server.duet.lead = 0.25
        out = run_sclang(tmp_path, server.port, DUET)
    assert "ERROR" not in out, out[-3000:]
    t = float(next(line.split()[1] for line in out.splitlines() if line.startswith("PHRASE")))
    answers = [line.split()[1:] for line in out.splitlines() if line.startswith("ANSWER")]
    notices = [line.split(" ", 2)[1:] for line in out.splitlines() if line.startswith("NOTICE")]
    assert notices == [["1", CHORD_NOTICE]], "the chord in the first phrase, said once"
    assert [(int(n), float(start), int(count)) for n, start, count in answers] == [(1, t + 3, 4), (2, t + 6, 4)]
    played = [line.split()[1:] for line in out.splitlines() if line.startswith("PLAY")]
    assert [(int(n), int(p), int(v), float(d), float(beat)) for n, p, v, d, beat in played] == [
        (1, 72, 90, 0.5, t + 3), (1, 72, 90, 0.5, t + 4),  # answer 1 stops where the player came in (t + 4.25)
        (2, 72, 90, 0.5, t + 6), (2, 72, 90, 0.5, t + 7), (2, 72, 90, 0.5, t + 8), (2, 72, 90, 0.5, t + 9)]
