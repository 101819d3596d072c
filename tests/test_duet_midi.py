"""`magenta-bridge duet` / `follow`: a simulated keyboard in, a recording synth out, the command's own
clock, the fake models of fake_bridge.py (Continue: a note of pitch 72 on every beat; Drumify: a kick
at every note). Notes go in from a thread, as python-rtmidi's callback delivers them.

The machine these run on is shared with training jobs, so a timer may fire tens of milliseconds
late: what is checked to the microsecond is the time each note was scheduled for (the loop's
`call_at`), and what was sent is checked for order and completeness. The lead is widened to
LEAD_TESTED for the same reason; bench/bench_duet.py measures the default one.
"""
import asyncio
import importlib.util
import threading

import mido
import pytest
from fake_bridge import fake_store

from bridge import cli
from bridge.clip import TimeSignature
from bridge.duet.midi import DRUM_CHANNEL, PlayAlong
from bridge.duet.modes import DUET, FOLLOW

LEAD_TESTED = 0.25  # seconds


class Synth:
    """An output port that notes each message with the time the loop had scheduled its callback
    for (`call_at`), or None for a message sent straight away."""

    def __init__(self) -> None:
        self.sent: list[tuple[float | None, mido.Message]] = []
        self.due: float | None = None

    def send(self, msg: mido.Message) -> None:
        self.sent.append((self.due, msg))

    def notes(self, kind: str, channel: int | None = None) -> list[tuple[float, int]]:
        return [(t, m.note) for t, m in self.sent if m.type == kind and (channel is None or m.channel == channel)]

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wrap loop.call_at so that what a timer sends carries the time it was due."""
        call_at = loop.call_at

        def timed(when, callback, *args, **kwargs):
            def run(*a):
                self.due = when
                try:
                    callback(*a)
                finally:
                    self.due = None
            return call_at(when, run, *args, **kwargs)

        loop.call_at = timed


def play_along(mode, params, script, tempo=240.0, meter=TimeSignature(4, 4), until=None, **options):
    """Run PlayAlong; `script(keyboard, beat_wall)` plays from a thread; returns (synth, wall-of-beat)."""
    synth = Synth()

    async def main():
        loop = asyncio.get_running_loop()
        synth.watch(loop)
        along = PlayAlong(mode, params, synth, fake_store(), tempo, meter, lead=LEAD_TESTED, **options)
        stop = asyncio.Event()
        task = asyncio.create_task(along.run(stop))
        while along.runner is None:
            await asyncio.sleep(0.001)
        clock = along.runner.clock
        keyboard = threading.Thread(target=script, args=(along.receive, clock.wall_at, loop.time))
        keyboard.start()
        await loop.run_in_executor(None, keyboard.join)
        await asyncio.sleep(max(0.0, clock.wall_at(until) - loop.time()))
        stop.set()
        await task
        return clock.wall_at

    wall_at = asyncio.run(asyncio.wait_for(main(), 30))
    return synth, wall_at


def keys(notes):
    """A keyboard script: (pitch, start, end) in beats, pressed at their times."""
    def script(receive, wall_at, now):
        import time
        events = sorted([(s, 1, p) for p, s, _ in notes] + [(e, 0, p) for p, _, e in notes])
        for beat, on, pitch in events:
            time.sleep(max(0.0, wall_at(beat) - now()))
            receive(mido.Message("note_on" if on else "note_off", note=pitch, velocity=100 if on else 0))
    return script


def beats(times, wall_at):
    """Scheduled times as transport beats (4 a second at 240 bpm), None for a message sent at once."""
    zero, second = wall_at(0.0), wall_at(1.0) - wall_at(0.0)
    return [None if t is None else round((t - zero) / second, 6) for t in times]


def test_the_answer_plays_on_its_beats_and_the_players_notes_pass_through():
    synth, wall_at = play_along(DUET, {"wait": 0.5, "length": 1}, keys([(60, 0.0, 0.5), (64, 0.5, 1.0)]), until=8.0)
    ons = synth.notes("note_on", 0)
    assert [p for _, p in ons] == [60, 64, 72, 72, 72, 72], "thru, then the answer"
    assert beats([t for t, _ in ons], wall_at) == [None, None, 3.0, 4.0, 5.0, 6.0]  # release 1 + wait .5 + lead 1
    offs = synth.notes("note_off", 0)
    assert [p for _, p in offs] == [60, 64, 72, 72, 72, 72]
    assert beats([t for t, _ in offs], wall_at)[2:] == [3.5, 4.5, 5.5, 6.5]


def test_a_key_during_the_answer_stops_it_and_nothing_hangs():
    synth, wall_at = play_along(DUET, {"wait": 0.5, "length": 2}, keys([(60, 0.0, 1.0), (62, 3.75, 4.0)]),
                                until=12.5, thru=False)
    starts = beats([t for t, _ in synth.notes("note_on")], wall_at)
    assert starts[:1] == [3.0] and 4.0 not in starts, "answer 1 (beats 3-10) stops at 3.75"
    assert starts[1:] == [6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0], "the key was a phrase: answered after its pause"
    on_count = {p: 0 for p in (72,)}
    for _, msg in synth.sent:
        on_count[msg.note] += 1 if msg.type == "note_on" else -1
    assert on_count == {72: 0}, "every note-on has its note-off"


def test_follow_plays_drums_on_channel_10_and_the_click_keeps_the_beat():
    synth, wall_at = play_along(FOLLOW, {"bars": 1}, keys([(48, 0.0, 0.5), (48, 1.5, 2.0)]), tempo=180.0,
                                until=8.5, click=True, thru=False)
    kicks = [t for t, p in synth.notes("note_on", DRUM_CHANNEL) if p == 36]
    # the kicks fall where the keys were stamped when they came in, within a thread's wake-up of the beat
    assert beats(kicks, wall_at) == pytest.approx([4.0, 5.5], abs=0.1), "the first bar's rhythm, a bar later"
    clicks = [p for _, p in synth.notes("note_on", DRUM_CHANNEL) if p in (37, 31)]
    assert len(clicks) >= 7 and clicks[:5] == [31, 31, 31, 37, 31], "a click on each beat, the downbeat's own"


def test_the_command_checks_its_settings_before_it_opens_a_port(capsys):
    assert cli.main(["duet", "--meter", "7/32"]) == 2
    assert "7/32 has no whole-step grid" in capsys.readouterr().err
    assert cli.main(["follow", "--tempo", "0"]) == 2
    assert "--tempo must be 1-999 bpm" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["duet", "--wait", "9"])
    assert "wait must be 0.25-8" in capsys.readouterr().err
    parser = cli.build_parser()
    for mode in (DUET, FOLLOW):
        args = parser.parse_args([mode.name])
        assert all(getattr(args, p.name) is None for p in mode.params), "unset options take the table's defaults"


@pytest.mark.skipif(importlib.util.find_spec("rtmidi") is not None, reason="python-rtmidi is installed here")
def test_without_python_rtmidi_the_command_says_what_to_install(capsys):
    assert cli.main(["duet", "--list-ports"]) == 2
    assert "needs python-rtmidi: pip install 'magenta-bridge[midi]'" in capsys.readouterr().err
