"""Drum maps: GM by default, any kit by nine pitches, clear refusals."""
import pytest

from bridge.drums import CLASS_NAMES, GM_CLASS_PITCHES, GM_DRUM_MAP, NUM_CLASSES, DrumMap


def test_gm_map_reads_every_gm_drum_pitch_and_writes_the_first():
    assert GM_DRUM_MAP.to_text() == "36,38,42,46,45,48,50,49,51"
    assert [GM_DRUM_MAP.pitch(c) for c in range(NUM_CLASSES)] == [g[0] for g in GM_CLASS_PITCHES]
    for drum_class, group in enumerate(GM_CLASS_PITCHES):
        assert all(GM_DRUM_MAP.classify(p) == drum_class for p in group)
    assert GM_DRUM_MAP.classify(100) is None and len(CLASS_NAMES) == NUM_CLASSES


def test_custom_kit_round_trips_and_overrides_gm():
    text = "36,37,38,39,40,41,42,43,44"  # a Drum Rack filled from C1 upwards
    kit = DrumMap.parse(text)
    assert kit.to_text() == text
    assert DrumMap.parse(kit.to_text()) == kit
    assert [kit.classify(p) for p in range(36, 45)] == list(range(NUM_CLASSES))
    assert kit.classify(38) == 2  # the kit's closed hat, though GM calls 38 a snare
    assert kit.classify(51) == 8 and kit.classify(35) == 0  # GM pitches the kit lacks keep their GM class
    assert DrumMap.parse("36 37 38 39 40 41 42 43 44") == kit


@pytest.mark.parametrize("text, message", [
    ("36,38,42", "must be 9 pitches"),
    ("36,38,42,46,45,48,50,49,51,52", "must be 9 pitches"),
    ("36,38,42,46,45,48,50,49,128", "must be 9 pitches 0-127"),
    ("36,38,42,46,45,48,50,49,-1", "must be 9 pitches 0-127"),
    ("kick,38,42,46,45,48,50,49,51", "must be 9 comma-separated pitches"),
    ("36,36,42,46,45,48,50,49,51", "must all differ"),
    ("", "must be 9 pitches"),
])
def test_bad_maps_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        DrumMap.parse(text)


def test_a_played_kit_with_long_note_offs_is_drums_and_a_chord_pad_is_not():
    """Groove MIDI Dataset kits hold their notes about a third of a beat (more once a 4/4 groove
    is stretched into 6/8): struck together, they are drums; a detached bass line of 8ths and
    held chords in the drum register are not."""
    from bridge.clip import Note
    from bridge.drums import looks_like_drums

    kit = [Note(p, b / 2, 0.33, 90) for b in range(16) for p in ((36, 42) if b % 2 == 0 else (42,))]
    bass = [Note(36 + i % 5, i * 0.5, 0.4, 90) for i in range(16)]
    pads = [Note(p, b * 2.0, 1.9, 70) for b in range(4) for p in (48, 52, 55)]
    assert looks_like_drums(kit, GM_DRUM_MAP)
    assert not looks_like_drums(bass, GM_DRUM_MAP) and not looks_like_drums(pads, GM_DRUM_MAP)
