"""`magenta-bridge play`: scheduling against a fake clock and port, the command, the WAV preview."""
import importlib.util
import shutil
import time
import wave

import mido
import pytest
from fake_bridge import fake_store

from bridge import cli, play
from bridge.clip import Clip, Note, TimeSignature
from bridge.midi_io import read_midi_tracks, write_midi
from bridge.model_store import ModelStore


class FakeClock:
    """Time that moves only when slept; every sleep overshoots by `late` seconds, as real ones do."""

    def __init__(self, late: float = 0.0) -> None:
        self.now = 1000.0
        self.late = late

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.late


class FakePort:
    """Captures (time, message); raises KeyboardInterrupt on send number `stop_at`."""

    def __init__(self, clock=None, stop_at: int | None = None) -> None:
        self.clock = clock
        self.stop_at = stop_at
        self.sent: list[tuple[float, mido.Message]] = []
        self.closed = False
        self.name = "fake port"

    def send(self, msg: mido.Message) -> None:
        if self.stop_at is not None and len(self.sent) == self.stop_at:
            self.stop_at = None
            raise KeyboardInterrupt
        self.sent.append((self.clock() if self.clock else 0.0, msg))

    def close(self) -> None:
        self.closed = True


def type0_file(path) -> mido.MidiFile:
    """120 bpm, a note at beat 1, 60 bpm from beat 2, a note at beat 3: notes at 0.5 s and 2.0 s."""
    track = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
        mido.Message("note_on", note=60, velocity=90, time=480),
        mido.Message("note_off", note=60, time=240),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=240),
        mido.Message("note_on", channel=9, note=36, velocity=100, time=480),
        mido.Message("note_off", channel=9, note=36, time=480),
    ])
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(track)
    mid.save(path)
    return mido.MidiFile(path)


def times(events):
    return [(round(t, 4), m.type, m.note) for t, m in events]


def test_schedule_follows_the_tempo_map_of_type_0_and_type_1(tmp_path):
    assert times(play.schedule(type0_file(tmp_path / "t0.mid"))) == [
        (0.5, "note_on", 60), (0.75, "note_off", 60), (2.0, "note_on", 36), (3.0, "note_off", 36)]
    clip = Clip([Note(64, 1.0, 0.5, 80), Note(67, 2.0, 1.0, 80)], 4.0, 90.0, TimeSignature(7, 8))
    path = write_midi(tmp_path / "t1.mid", [clip])
    assert times(play.schedule(mido.MidiFile(path))) == [
        (0.6667, "note_on", 64), (1.0, "note_off", 64), (1.3333, "note_on", 67), (2.0, "note_off", 67)]


def test_with_tempo_overrides_every_tempo_and_keeps_the_meter(tmp_path):
    fixed = play.with_tempo(type0_file(tmp_path / "t0.mid"), 240.0)
    assert times(play.schedule(fixed)) == [
        (0.25, "note_on", 60), (0.375, "note_off", 60), (0.75, "note_on", 36), (1.0, "note_off", 36)]
    metas = [m for m in fixed.tracks[0] if m.is_meta]
    assert [m.type for m in metas].count("set_tempo") == 1
    assert any(m.type == "time_signature" and (m.numerator, m.denominator) == (3, 4) for m in metas)


def test_play_sends_at_absolute_deadlines_so_lateness_never_adds_up():
    clock = FakeClock(late=0.003)
    events = [(i * 0.125, mido.Message("note_on" if i % 2 == 0 else "note_off", note=60)) for i in range(400)]
    port = FakePort(clock)
    play.play(events, port, clock=clock, sleep=clock.sleep)
    assert [m for _, m in port.sent] == [m for _, m in events]
    lateness = [sent - 1000.0 - at for (sent, _), (at, _) in zip(port.sent, events)]
    assert max(lateness) <= 0.003 + 1e-9 and min(lateness) >= 0  # 400 late sleeps, still 3 ms at most


def test_interrupted_playback_switches_off_sounding_notes():
    clock = FakeClock()
    events = [(0.0, mido.Message("note_on", note=60)), (0.0, mido.Message("note_on", channel=9, note=36)),
              (0.5, mido.Message("note_off", note=60)), (1.0, mido.Message("note_on", note=62))]
    port = FakePort(clock, stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        play.play(events, port, clock=clock, sleep=clock.sleep)
    assert [(m.type, m.channel, m.note) for _, m in port.sent] == [
        ("note_on", 0, 60), ("note_on", 9, 36), ("note_off", 0, 60), ("note_off", 9, 36)]


@pytest.fixture
def port(monkeypatch):
    fake = FakePort(clock=time.monotonic)
    monkeypatch.setattr(play, "open_port", lambda name: fake)
    return fake


def test_play_command_plays_a_file_at_the_given_tempo(tmp_path, port):
    path = write_midi(tmp_path / "riff.mid", [Clip([Note(60, 0.0, 0.5), Note(72, 1.0, 0.5)], 2.0, 100.0)])
    assert cli.main(["play", str(path), "--tempo", "600"]) == 0
    assert [(m.type, m.note) for _, m in port.sent] == [("note_on", 60), ("note_off", 60), ("note_on", 72),
                                                       ("note_off", 72)]
    start = port.sent[0][0]
    assert port.sent[2][0] - start == pytest.approx(0.1, abs=0.03)  # beat 1 at 600 bpm
    assert port.closed


def test_play_tool_runs_it_and_plays_the_variations_in_turn(tmp_path, port, monkeypatch):
    monkeypatch.setattr(ModelStore, "from_dir", classmethod(lambda cls, d: fake_store()))
    out = tmp_path / "kept.mid"
    assert cli.main(["play", "--tempo", "960", "--tool", "generate", "--variations", "2", "--bars", "1",
                     "--type", "drums", "-o", str(out)]) == 0
    (track,) = [t for t in read_midi_tracks(out).tracks]
    assert track.is_drum and [n.start for n in track.notes] == [0, 1, 2, 3, 4.125, 5.125, 6.125, 7.125]
    ons = [(t, m.note) for t, m in port.sent if m.type == "note_on"]
    assert [n for _, n in ons] == [60] * 4 + [61] * 4
    assert ons[4][0] - ons[0][0] == pytest.approx(4.125 * 60 / 960, abs=0.03)


@pytest.mark.parametrize("argv, message", [
    (["play"], "a MIDI FILE or --tool NAME"),
    (["play", "x.mid", "--tool", "generate"], "a MIDI FILE or --tool NAME"),
    (["play", "--tool", "sing"], "no tool 'sing'"),
    (["play", "x.mid", "--tempo", "0"], "--tempo must be 1-999 bpm"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("rtmidi") is not None,
                    reason="python-rtmidi is installed: opening a port would not fail for want of it")
def test_missing_rtmidi_says_which_extra_to_install(tmp_path, capsys):
    path = write_midi(tmp_path / "a.mid", [Clip([Note(60, 0.0, 0.5)], 1.0)])
    assert cli.main(["play", str(path)]) == 2
    assert "pip install 'magenta-bridge[midi]'" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("fluidsynth") is None or play.find_soundfont() is None,
                    reason="the WAV preview needs fluidsynth and a General MIDI soundfont (fluid-soundfont-gm)")
def test_preview_renders_a_wav_as_long_as_the_music(tmp_path, capsys):
    path = write_midi(tmp_path / "a.mid", [Clip([Note(60, 0.0, 1.0, 100), Note(64, 1.0, 1.0, 100)], 2.0, 120.0)])
    wav = tmp_path / "a.wav"
    assert cli.main(["play", str(path), "--tempo", "60", "--preview", str(wav)]) == 0
    assert f"preview: {wav}" in capsys.readouterr().out
    with wave.open(str(wav)) as audio:
        seconds = audio.getnframes() / audio.getframerate()
        assert audio.getframerate() == 44100 and audio.getnchannels() == 2
        frames = audio.readframes(audio.getnframes())
    assert 2.0 <= seconds < 6.0  # two beats at 60 bpm, plus the release tail
    assert any(frames)  # not silence
