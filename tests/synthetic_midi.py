"""Small MIDI folders written with mido, so pipeline and training tests need no real data."""
from __future__ import annotations

import csv
from pathlib import Path

import mido
import numpy as np

TPB = 96


def _track(name: str, notes: list[tuple[int, float, float, int]], channel: int) -> mido.MidiTrack:
    """notes: (pitch, start beat, duration beats, velocity)."""
    events = []
    for pitch, start, duration, velocity in notes:
        events.append((round(start * TPB), 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((round((start + duration) * TPB), 0, mido.Message("note_off", channel=channel, note=pitch)))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def write_song(path: Path, tracks: dict[str, list], meta: list[tuple[float, mido.MetaMessage]] = (),
               drums: bool = False) -> Path:
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    conductor = mido.MidiTrack()
    now = 0
    for beat, msg in sorted(meta, key=lambda m: m[0]):
        tick = round(beat * TPB)
        conductor.append(msg.copy(time=tick - now))
        now = tick
    mid.tracks.append(conductor)
    for name, notes in tracks.items():
        mid.tracks.append(_track(name, notes, 9 if drums else 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)
    return path


def melody_notes(rng: np.random.Generator, bars: int) -> list[tuple[int, float, float, int]]:
    """A random 4/4 line of eighths and quarters in C major around middle C."""
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    notes, beat = [], 0.0
    while beat < bars * 4:
        duration = float(rng.choice([0.5, 1.0]))
        notes.append((int(rng.choice(scale)), beat, duration * 0.9, int(rng.integers(60, 110))))
        beat += duration
    return notes


def drum_notes(rng: np.random.Generator, bars: int) -> list[tuple[int, float, float, int]]:
    """Kick on 1 and 3, snare on 2 and 4, hats on eighths, a random extra hit per bar."""
    notes = []
    for bar in range(bars):
        for beat in range(4):
            t = bar * 4 + beat
            notes.append((36 if beat % 2 == 0 else 38, t, 0.1, 100))
            notes += [(42, t, 0.1, 70), (42, t + 0.5, 0.1, 60)]
        notes.append((int(rng.choice([45, 48, 50, 49, 51])), bar * 4 + float(rng.integers(0, 16)) / 4, 0.1, 90))
    return notes


def melody_folder(root: Path, songs: int = 24, bars: int = 20, seed: int = 0) -> Path:
    """POP909-like: NNN/NNN.mid with MELODY and PIANO tracks and a tempo change mid-song."""
    rng = np.random.default_rng(seed)
    for i in range(songs):
        name = f"{i:03d}"
        meta = [(0.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90))),
                (0.0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
                (32.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)))]
        write_song(root / name / f"{name}.mid", {"MELODY": melody_notes(rng, bars),
                                                 "PIANO": [(48, 0.0, 4.0, 80), (52, 0.0, 4.0, 80)]}, meta)
    return root


def drum_folder(root: Path, files: int = 12, bars: int = 16, seed: int = 0) -> Path:
    """GMD-like: drum files plus an info.csv whose split column says train/validation/test."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(files):
        rel = f"drummer1/session1/{i}_rock_120_beat_4-4.mid"
        write_song(root / rel, {"drums": drum_notes(rng, bars)},
                   [(0.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)))], drums=True)
        rows.append({"midi_filename": rel, "split": ("train", "train", "validation", "test")[i % 4]})
    with open(root / "info.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["midi_filename", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return root


CHORDS = ((0, 4, 7), (5, 9, 0), (7, 11, 2), (9, 0, 4), (2, 5, 9), (2, 6, 9))  # I IV V vi ii V/V (pitch classes)
# An octave each (one pitch per class) around the chorales' own voice means (S 70.5, A 65,
# T 59.4, B 50.8); the bass's octave is below the tenor's, so the bass never doubles a voice.
VOICE_RANGES = {"S": (65, 76), "A": (59, 70), "T": (56, 67), "B": (44, 55)}


def chorale_voices(rng: np.random.Generator, bars: int, beats_per_bar: int = 4, key: int = 0) -> dict[str, list]:
    """Four voices S, A, T, B of a chord a beat in major `key`, each voice in its own register
    (the bass on the root, the upper three on the three chord tones, so no unisons), every bar
    ending on the tonic: a chorale's texture, not its art."""
    voices: dict[str, list] = {name: [] for name in VOICE_RANGES}
    for beat in range(bars * beats_per_bar):
        last = beat % beats_per_bar == beats_per_bar - 1
        chord = CHORDS[0] if last else CHORDS[int(rng.integers(len(CHORDS)))]
        turn = int(rng.integers(3))
        for i, (name, (low, high)) in enumerate(VOICE_RANGES.items()):
            pc = (chord[0] if name == "B" else chord[(i + turn) % 3]) + key
            pitch = next(p for p in range(low, high + 1) if p % 12 == pc % 12)
            voices[name].append((pitch, float(beat), 1.0, 80))
    return voices


def chorale_folder(root: Path, files: int = 16, bars: int = 12, seed: int = 0) -> Path:
    """Chorale-like files: tracks S, A, T, B, in 4/4 and (every third file) 3/4, in several keys."""
    rng = np.random.default_rng(seed)
    for i in range(files):
        beats = 3 if i % 3 == 2 else 4
        meta = [(0.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(80))),
                (0.0, mido.MetaMessage("time_signature", numerator=beats, denominator=4))]
        write_song(root / f"bwv{i:03d}.mid", chorale_voices(rng, bars, beats, key=i % 5), meta)
    return root
