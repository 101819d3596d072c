"""MIDI files in and out: beats from ticks, context kept, type 0 and 1, odd meters, tempo maps."""
import mido
import pytest

from bridge.clip import Clip, ClipError, Note, TimeSignature
from bridge.midi_io import DRUM_CHANNEL, read_midi, read_midi_tracks, read_part, write_midi


def _note_track(name, notes, channel=0, tpb=96):
    """A mido track from (pitch, start_beat, duration_beats, velocity) tuples."""
    events = []
    for pitch, start, duration, velocity in notes:
        events.append((round(start * tpb), 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((round((start + duration) * tpb), 0, mido.Message("note_on", channel=channel, note=pitch, velocity=0)))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)] if name else [])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: e[:2]):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def _save(tmp_path, mid, name="in.mid"):
    path = tmp_path / name
    mid.save(path)
    return path


def test_type1_tempo_change_reads_beats_from_ticks(tmp_path):
    tpb = 96
    conductor = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)),
        mido.MetaMessage("time_signature", numerator=3, denominator=4),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(180), time=6 * tpb),
        mido.MetaMessage("time_signature", numerator=6, denominator=8, time=3 * tpb),
    ])
    melody = _note_track("MELODY", [(60, 0, 1, 80), (62, 7.5, 0.5, 90), (64, 10, 2, 100)])
    piano = _note_track("PIANO", [(48, 0, 4, 50)], channel=2)
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb, tracks=[conductor, melody, piano])
    path = _save(tmp_path, mid)

    score = read_midi_tracks(path)
    assert [(t.beat, t.bpm) for t in score.tempos] == [(0.0, 90.0), (6.0, 180.0)]
    assert [(m.beat, str(m.time_signature)) for m in score.time_signatures] == [(0.0, "3/4"), (9.0, "6/8")]
    assert [(t.name, t.track, t.channel) for t in score.tracks] == [("MELODY", 1, 0), ("PIANO", 2, 2)]
    # The note after the tempo change is at beat 7.5, not at a time scaled by the new tempo.
    assert [(n.pitch, n.start, n.duration, n.velocity) for n in score.tracks[0].notes] == [
        (60, 0.0, 1.0, 80), (62, 7.5, 0.5, 90), (64, 10.0, 2.0, 100)]

    clip = read_midi(path, track="melody")
    assert (clip.name, clip.tempo, str(clip.time_signature)) == ("MELODY", 90.0, "3/4")
    assert clip.length == 12.0  # last note ends at beat 12: exactly four bars of 3/4
    assert len(read_midi(path).notes) == 4
    assert [n.pitch for n in read_midi(path, track=2).notes] == [48]
    assert [n.pitch for n in read_midi(path, channel=2).notes] == [48]
    assert len(read_midi(path, track="MELODY", length=8).notes) == 2


def test_type0_splits_channels_and_drum_flag(tmp_path):
    tpb = 480
    events = _note_track("kit", [(36, 0, 0.25, 100), (38, 1, 0.25, 90)], channel=DRUM_CHANNEL, tpb=tpb)
    bass = _note_track("", [(40, 0.5, 1, 70)], channel=1, tpb=tpb)
    merged = mido.merge_tracks([mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
                                                mido.MetaMessage("time_signature", numerator=7, denominator=8)]),
                                events, bass])
    path = _save(tmp_path, mido.MidiFile(type=0, ticks_per_beat=tpb, tracks=[merged]))

    score = read_midi_tracks(path)
    assert [(t.channel, t.is_drum, len(t.notes)) for t in score.tracks] == [(1, False, 1), (DRUM_CHANNEL, True, 2)]
    drums = read_midi(path, drums=True)
    assert [n.pitch for n in drums.notes] == [36, 38]
    assert [n.pitch for n in read_midi(path, drums=False).notes] == [40]
    assert (drums.tempo, str(drums.time_signature), drums.length) == (100.0, "7/8", 3.5)


def test_overlapping_and_unfinished_notes_are_read_in_order(tmp_path):
    tpb = 100
    track = mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=10, time=0),
        mido.Message("note_on", note=60, velocity=20, time=100),
        mido.Message("note_off", note=60, velocity=30, time=100),
        mido.Message("note_off", note=60, velocity=40, time=100),
        mido.Message("note_on", note=62, velocity=50, time=0),
        mido.Message("note_off", note=62, velocity=0, time=0),  # a zero-length trigger
        mido.Message("note_on", note=64, velocity=60, time=0),  # never switched off
        mido.MetaMessage("end_of_track", time=200),
    ])
    path = _save(tmp_path, mido.MidiFile(type=1, ticks_per_beat=tpb, tracks=[track]))
    notes = read_midi_tracks(path).tracks[0].notes
    assert [(n.pitch, n.start, n.duration, n.velocity) for n in notes] == [
        (60, 0.0, 2.0, 10), (60, 1.0, 2.0, 20), (62, 3.0, 0.01, 50), (64, 3.0, 2.0, 60)]
    assert [n.release_velocity for n in notes[:2]] == [30, 40]


@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (6, 8), (7, 8)])
def test_round_trip_keeps_notes_context_and_names(tmp_path, meter):
    ts = TimeSignature(*meter)
    notes = [Note(60, 0.0, 0.5, 1), Note(64, 1 / 3, 0.25, 127, release_velocity=0),
             Note(67, 2.0 + 1 / 480, 1 / 480, 77), Note(60, 0.5, 1.0, 99)]  # 60 again exactly when the first ends
    clips = [Clip(notes, 2 * ts.beats_per_bar, 133.5, ts, name="lead"),
             Clip([Note(36, 0.0, 0.25, 100)], ts.beats_per_bar, 133.5, ts, name="second")]
    path = write_midi(tmp_path / "out.mid", clips)

    mid = mido.MidiFile(path)
    assert (mid.type, mid.ticks_per_beat, [t.name for t in mid.tracks]) == (1, 480, ["", "lead", "second"])
    back = read_midi(path, track="lead", length=clips[0].length)
    assert back == clips[0].with_notes(notes)
    assert read_midi(path, track=2).notes == clips[1].notes


def test_same_pitch_overlap_is_cut_and_off_comes_before_on(tmp_path):
    clip = Clip([Note(60, 0.0, 2.0), Note(60, 1.0, 1.0), Note(62, 0.0, 1.0), Note(62, 1.0, 1.0)], 4.0)
    path = write_midi(tmp_path / "o.mid", [clip])
    messages = [(m.type, m.note) for m in mido.MidiFile(path).tracks[1] if m.type.startswith("note")]
    assert messages[2:4] == [("note_off", 60), ("note_off", 62)]  # both offs at beat 1 precede the ons
    assert [(n.pitch, n.start, n.duration) for n in read_midi(path).notes] == [
        (60, 0.0, 1.0), (62, 0.0, 1.0), (60, 1.0, 1.0), (62, 1.0, 1.0)]


def test_sequence_writes_tempo_and_meter_changes(tmp_path):
    a = Clip([Note(60, 0.0, 1.0)], 4.0, 120.0, TimeSignature(4, 4), name="a")
    b = Clip([Note(62, 0.5, 1.0)], 3.0, 90.0, TimeSignature(6, 8), name="b")
    path = write_midi(tmp_path / "s.mid", [a, b, a], sequence=True, drums=True, name="song")
    score = read_midi_tracks(path)
    assert [(t.beat, t.bpm) for t in score.tempos] == [(0.0, 120.0), (4.0, 90.0), (7.0, 120.0)]
    assert [(m.beat, str(m.time_signature)) for m in score.time_signatures] == [(0.0, "4/4"), (4.0, "6/8"), (7.0, "4/4")]
    (track,) = score.tracks
    assert (track.name, track.is_drum) == ("song", True)
    assert [(n.pitch, n.start) for n in track.notes] == [(60, 0.0), (62, 4.5), (60, 7.0)]


def test_muted_notes_are_not_written(tmp_path):
    clip = Clip([Note(60, 0.0, 1.0, mute=True), Note(61, 0.0, 1.0)], 4.0)
    assert [n.pitch for n in read_midi(write_midi(tmp_path / "m.mid", [clip])).notes] == [61]


def test_empty_file_gives_one_empty_bar(tmp_path):
    path = _save(tmp_path, mido.MidiFile(type=1, tracks=[mido.MidiTrack()]))
    clip = read_midi(path)
    assert (clip.notes, clip.length, clip.tempo, str(clip.time_signature)) == ((), 4.0, 120.0, "4/4")


def test_errors_name_the_problem(tmp_path):
    path = write_midi(tmp_path / "x.mid", [Clip([Note(60, 0.0, 1.0)], 4.0, name="lead")])
    with pytest.raises(ClipError, match="no track named 'bass'; track names: 'lead'"):
        read_midi(path, track="bass")
    with pytest.raises(ClipError, match="track 5 does not exist"):
        read_midi(path, track=5)
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"not midi at all")
    with pytest.raises(ClipError, match="not a MIDI file"):
        read_midi(junk)
    with pytest.raises(FileNotFoundError):
        read_midi(tmp_path / "missing.mid")
    with pytest.raises(ClipError, match="no clips"):
        write_midi(tmp_path / "y.mid", [])
    with pytest.raises(ClipError, match="velocity"):
        write_midi(tmp_path / "y.mid", [Clip([Note(60, 0.0, 1.0, velocity=0)])])


def test_names_beyond_latin1_round_trip_and_latin1_files_still_read(tmp_path):
    clip = Clip([Note(60, 0.0, 1.0, 90)], 4.0, name="Lead 𝄞 ü")
    path = write_midi(tmp_path / "utf8.mid", [clip])
    assert read_midi(path, track="Lead 𝄞 ü").name == "Lead 𝄞 ü"
    mid = mido.MidiFile(type=1)
    mid.tracks.append(_note_track("Bässe", [(40, 0.0, 1.0, 80)]))
    latin = _save(tmp_path, mid, "latin1.mid")  # mido writes Latin-1 by default
    assert read_midi(latin, track="Bässe").notes[0].pitch == 40


def test_read_part_names_the_channel_of_a_type_0_file(tmp_path):
    """A type-0 file plays every part on one track: the note names the channel it read."""
    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="all")])
    for channel, pitches in ((0, [60, 62]), (1, [40, 41, 43]), (9, [36])):
        for pitch in pitches:
            track += [mido.Message("note_on", channel=channel, note=pitch, velocity=90),
                      mido.Message("note_off", channel=channel, note=pitch, time=96)]
    mid.tracks.append(track)
    mid.save(tmp_path / "t0.mid")
    clip, which = read_part(tmp_path / "t0.mid", drums=False)
    assert [n.pitch for n in clip.notes] == [40, 41, 43]  # no MELODY track: the busiest pitched part
    assert which == ("t0.mid: read track 0 'all' channel 2; not read: track 0 'all' channel 1 (2 notes), "
                     "track 0 'all' channel 10 (1 note) (--track picks one)")
    clip, which = read_part(tmp_path / "t0.mid", drums=True)
    assert [n.pitch for n in clip.notes] == [36] and "read track 0 'all' channel 10;" in which
