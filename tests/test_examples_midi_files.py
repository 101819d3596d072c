"""Every tool from the command line on MIDI files: type 0 and type 1 in, tempo and meter kept out."""
import mido
import pytest
from fake_bridge import expected, fake_store

from bridge import cli
from bridge.clip import Clip, Note, TimeSignature
from bridge.midi_io import read_midi, read_midi_tracks, write_midi
from bridge.model_store import ModelStore
from bridge.tools import TOOLS

METER = TimeSignature(6, 8)
RIFF = Clip([Note(62, 0.0, 0.5, 90), Note(65, 0.75, 0.25, 70), Note(69, 1.5, 1.0, 100)], 3.0, 100.0, METER, None, "riff")


def type0(path) -> str:
    """A type-0 file as hardware sequencers write it: one track, tempo and meter inline."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
                            mido.MetaMessage("time_signature", numerator=6, denominator=8)])
    now = 0
    for tick, kind, note in sorted([(round(n.start * 480), "note_on", n) for n in RIFF.notes] +
                                   [(round(n.end * 480), "note_off", n) for n in RIFF.notes],
                                   key=lambda e: (e[0], e[1] == "note_on")):
        track.append(mido.Message(kind, note=note.pitch, velocity=note.velocity if kind == "note_on" else 64,
                                  time=tick - now))
        now = tick
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(track)
    mid.save(path)
    return str(path)


@pytest.mark.parametrize("tool", list(TOOLS))
def test_every_tool_reads_type_0_and_1_and_keeps_tempo_and_meter(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(ModelStore, "from_dir", classmethod(lambda cls, d: fake_store()))
    files = [type0(tmp_path / "a.mid"), str(write_midi(tmp_path / "b.mid", [RIFF.with_notes(RIFF.notes[1:])]))]
    inputs = files[:TOOLS[tool].max_inputs] if tool != "generate" else files[:1]
    out = tmp_path / "out.mid"
    assert cli.main([tool, "-i", *inputs, "-o", str(out)]) == 0
    score = read_midi_tracks(out)
    assert mido.MidiFile(out).type == 1
    assert score.tempo == 100.0 and score.time_signature == METER
    want = expected(tool, [read_midi(path) for path in inputs])
    assert [sorted((n.pitch, n.start, n.velocity) for n in t.notes) for t in score.tracks] == \
        [sorted((n.pitch, round(n.start * 480) / 480, n.velocity) for n in c.notes) for c in want]
