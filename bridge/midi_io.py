"""Clips to and from Standard MIDI Files, with mido.

Times are read in beats from ticks (tick / ticks_per_beat), never from seconds: a file's tempo
changes move notes in seconds but not in beats, and beats are what clips and models count.
Channels use mido's numbering 0-15; the General MIDI drum channel "10" is DRUM_CHANNEL = 9.

Writing truncates a note when the same pitch starts again before it ends (a synth would cut
it there anyway, and the file stays unambiguous), and puts note-offs before note-ons that share
a tick, so a repeated note is never cut by its predecessor's note-off.

Reading refuses absurd files early, with a one-line ClipError, before they can cost memory or
time (READ_LIMITS): files over 2 MiB, ticks per beat of 0 or SMPTE time, a tempo of 0, events
past beat 16,384, more than 200,000 events or 100,000 notes, meters that have no grid, and
anything mido cannot parse (truncated files, bad key signatures).
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import mido

from bridge.clip import Clip, ClipError, Note, TimeSignature
from bridge.meter import MeterGrid

DRUM_CHANNEL = 9
TICKS_PER_BEAT = 480
DEFAULT_TEMPO = 120.0


@dataclass(frozen=True)
class ReadLimits:
    """What a MIDI file may hold. The largest training file (POP909, Groove, folk, chorales) is
    155 KB and a few thousand beats; these leave room for any real song and refuse the rest."""

    file_bytes: int = 2 << 20  # mido keeps ~250 bytes per event: 2 MiB of events is ~175 MB at most
    events: int = 200_000  # messages in all tracks
    notes: int = 100_000
    beats: float = 16_384.0  # where the last event may fall (2.3 hours at 120 bpm)


READ_LIMITS = ReadLimits()


@dataclass(frozen=True)
class TempoChange:
    beat: float
    bpm: float


@dataclass(frozen=True)
class MeterChange:
    beat: float
    time_signature: TimeSignature


@dataclass(frozen=True)
class TrackNotes:
    """The notes one track plays on one channel (a type-0 file splits into one per channel)."""

    name: str
    track: int  # index in the file's track list
    channel: int
    program: int  # first program change on this channel in this track, else 0
    notes: tuple[Note, ...]

    @property
    def is_drum(self) -> bool:
        return self.channel == DRUM_CHANNEL


@dataclass(frozen=True)
class MidiScore:
    """Everything a file plays, in beats: what the training pipeline and `read_midi` start from."""

    tracks: tuple[TrackNotes, ...]
    tempos: tuple[TempoChange, ...]
    time_signatures: tuple[MeterChange, ...]
    ticks_per_beat: int
    track_names: tuple[str, ...]  # every track of the file, notes or not, by index

    @property
    def tempo(self) -> float:
        return self.tempos[0].bpm if self.tempos else DEFAULT_TEMPO

    @property
    def time_signature(self) -> TimeSignature:
        return self.time_signatures[0].time_signature if self.time_signatures else TimeSignature()

    def beats_at(self, seconds: float) -> float:
        """The beat a time in seconds falls on, through the tempo map (for side files that
        count in seconds, such as POP909's beat annotations)."""
        beat, elapsed, bpm = 0.0, 0.0, DEFAULT_TEMPO
        for change in self.tempos:
            span = (change.beat - beat) * 60.0 / bpm
            if elapsed + span > seconds:
                break
            beat, elapsed, bpm = change.beat, elapsed + span, change.bpm
        return beat + (seconds - elapsed) * bpm / 60.0


def _bpm(tempo: int) -> float:
    # A DAW stores 90 bpm as 666667 us; three decimals give back the tempo the user typed.
    return round(mido.tempo2bpm(tempo), 3)


def _changes(pairs: list[tuple[int, object]], tpb: int) -> list[tuple[float, object]]:
    """Sort (tick, value) pairs and keep the last value given at each tick."""
    by_tick: dict[int, object] = {}
    for tick, value in sorted(pairs, key=lambda p: p[0]):
        by_tick[tick] = value
    return [(tick / tpb, value) for tick, value in by_tick.items()]


def _load(path: str | Path, limits: ReadLimits) -> mido.MidiFile:
    """The parsed file, or a one-line ClipError (FileNotFoundError and other OS errors pass)."""
    size = os.path.getsize(path)
    if size == 0:
        raise ClipError(f"{path}: the file is empty, not a MIDI file")
    if size > limits.file_bytes:
        raise ClipError(f"{path}: {size:,} bytes; MIDI files over {limits.file_bytes:,} bytes are refused")
    data = Path(path).read_bytes()
    if not data.startswith(b"MThd"):
        raise ClipError(f"{path}: not a MIDI file (it does not start with MThd)")
    try:
        # We write names as UTF-8; other programs often write Latin-1, which any byte string is.
        try:
            mid = mido.MidiFile(file=io.BytesIO(data), clip=True, charset="utf-8")
        except UnicodeDecodeError:
            mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except EOFError:
        raise ClipError(f"{path}: not a readable MIDI file: it ends in the middle of a track (truncated?)") from None
    except Exception as exc:  # mido raises OSError, ValueError, KeyError, KeySignatureError and more on garbage
        raise ClipError(f"{path}: not a readable MIDI file: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not 0 < mid.ticks_per_beat < 0x8000:  # mido reads the division as signed: SMPTE time is negative
        raise ClipError(f"{path}: {mid.ticks_per_beat} ticks per beat; only metrical time of 1-32767 ticks "
                        "per beat is read (not SMPTE time)")
    events = sum(len(track) for track in mid.tracks)
    if events > limits.events:
        raise ClipError(f"{path}: {events:,} events; files with more than {limits.events:,} are refused")
    return mid


def read_midi_tracks(path: str | Path, limits: ReadLimits = READ_LIMITS) -> MidiScore:
    """Read every note of a file, grouped by track and channel, with its tempo and meter maps.

    Overlapping notes of one pitch end first-in first-out; a zero-length note lasts one tick;
    a note never switched off ends at the last event of its track. A file past `limits`, or
    with a tempo of 0 or a meter that has no grid, is refused with a one-line ClipError.
    """
    mid = _load(path, limits)
    tpb = mid.ticks_per_beat
    last_tick = limits.beats * tpb
    n_notes = 0
    tempos: list[tuple[int, object]] = []
    meters: list[tuple[int, object]] = []
    tracks: list[TrackNotes] = []
    names: list[str] = []
    for index, track in enumerate(mid.tracks):
        name = ""
        tick = 0
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        found: dict[int, list[Note]] = {}
        programs: dict[int, int] = {}
        for msg in track:
            tick += msg.time
            if tick > last_tick:
                raise ClipError(f"{path}: track {index} runs past beat {limits.beats:,.0f}; longer files are refused "
                                f"(or its ticks per beat, {tpb}, are wrong)")
            kind = msg.type
            if kind == "note_on" and msg.velocity > 0:
                n_notes += 1
                if n_notes > limits.notes:
                    raise ClipError(f"{path}: more than {limits.notes:,} notes; larger files are refused")
                open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif kind == "note_off" or kind == "note_on":
                starts = open_notes.get((msg.channel, msg.note))
                if starts:
                    start, velocity = starts.pop(0)
                    release = msg.velocity if kind == "note_off" else 64
                    found.setdefault(msg.channel, []).append(
                        Note(msg.note, start / tpb, max(tick - start, 1) / tpb, velocity, release_velocity=release))
            elif kind == "program_change":
                programs.setdefault(msg.channel, msg.program)
            elif kind == "set_tempo":
                if msg.tempo <= 0:
                    raise ClipError(f"{path}: a tempo of {msg.tempo} microseconds per beat at beat {tick / tpb:g}")
                tempos.append((tick, _bpm(msg.tempo)))
            elif kind == "time_signature":
                meters.append((tick, _meter(path, msg.numerator, msg.denominator, tick / tpb)))
            elif kind == "track_name" and not name:
                name = msg.name.strip()
        for (channel, pitch), starts in open_notes.items():
            for start, velocity in starts:
                found.setdefault(channel, []).append(
                    Note(pitch, start / tpb, max(tick - start, 1) / tpb, velocity))
        names.append(name)
        for channel in sorted(found):
            notes = tuple(sorted(found[channel], key=lambda n: (n.start, n.pitch)))
            tracks.append(TrackNotes(name, index, channel, programs.get(channel, 0), notes))
    return MidiScore(
        tuple(tracks),
        tuple(TempoChange(beat, bpm) for beat, bpm in _changes(tempos, tpb)),
        tuple(MeterChange(beat, ts) for beat, ts in _changes(meters, tpb)),
        tpb,
        tuple(names),
    )


def _meter(path: str | Path, numerator: int, denominator: int, beat: float) -> TimeSignature:
    """A file's time signature, or ClipError: a meter with no grid would stop every tool and
    converter that measures bars with it."""
    meter = TimeSignature(numerator, denominator)
    try:
        meter.validate()
        MeterGrid.of(meter)
    except ValueError as exc:
        raise ClipError(f"{path}: time signature {numerator}/{denominator} at beat {beat:g}: {exc}") from None
    return meter


def _pick_track(score: MidiScore, track: str | int) -> int:
    """The index of a track given by index or by name (exact, then ignoring case)."""
    if isinstance(track, int):
        if not 0 <= track < len(score.track_names):
            raise ClipError(f"track {track} does not exist; the file has tracks 0-{len(score.track_names) - 1}")
        return track
    for wanted in (lambda n: n == track, lambda n: n.casefold() == track.casefold()):
        for index, name in enumerate(score.track_names):
            if wanted(name):
                return index
    listed = ", ".join(repr(n) for n in score.track_names if n) or "none"
    raise ClipError(f"no track named {track!r}; track names: {listed}")


def read_midi(path: str | Path, track: str | int | None = None, channel: int | None = None,
              drums: bool | None = None, length: float | None = None) -> Clip:
    """Read a file as one clip: the notes of one track (by name or index) or of all of them.

    `channel` keeps one channel (0-15); `drums` True keeps only the drum channel, False drops
    it. The clip takes the file's first tempo and time signature; its length is `length`, or
    the end of the last note rounded up to a whole bar of that time signature; with an explicit
    length, notes starting at or after it are left out, as Live would not play them.
    """
    score = read_midi_tracks(path)
    parts = list(score.tracks)
    if track is not None:
        index = _pick_track(score, track)
        parts = [p for p in parts if p.track == index]
    if channel is not None:
        parts = [p for p in parts if p.channel == channel]
    if drums is not None:
        parts = [p for p in parts if p.is_drum == drums]
    return _clip(score, parts, path, length)


def main_part(score: MidiScore, drums: bool, name: str = "MELODY") -> list[TrackNotes]:
    """What a tool should read from a file of several parts.

    Drums: every part on the drum channel (a kit may be split over tracks). Otherwise the part
    named `name` (POP909's MELODY), else the busiest pitched part, as training picks
    (bridge/data/converters/melody.py); a drum tool takes that too when the file has no drum
    channel, since Live exports a drum clip on channel 1. A file of drums alone gives its drums.
    """
    playing = [p for p in score.tracks if p.notes]
    drum = [p for p in playing if p.is_drum]
    pitched = [p for p in playing if not p.is_drum]
    if drums and drum:
        return drum
    named = [p for p in pitched if p.name.casefold() == name.casefold()]
    if named or pitched:
        return named[:1] or [max(pitched, key=lambda p: len(p.notes))]
    return drum


def _label(score: MidiScore, part: TrackNotes) -> str:
    """`track 2 'MELODY'`, with the channel when that track plays on several."""
    shared = sum(p.track == part.track for p in score.tracks) > 1
    return (f"track {part.track}" + (f" {part.name!r}" if part.name else "")
            + (f" channel {part.channel + 1}" if shared else ""))


def _listing(score: MidiScore, parts: list[TrackNotes]) -> str:
    return ", ".join(f"{_label(score, p)} ({len(p.notes)} note{'s' if len(p.notes) != 1 else ''})"
                     for p in parts) or "none"


def read_part(path: str | Path, drums: bool, track: str | int | None = None) -> tuple[Clip, str | None]:
    """The clip a tool reads from a file, and a line saying which part that was when there was
    a choice: the named or numbered `track`, else `main_part`. ClipError when it has no notes."""
    score = read_midi_tracks(path)
    playing = [p for p in score.tracks if p.notes]
    if track is not None:
        index = _pick_track(score, track)
        parts = [p for p in playing if p.track == index]
        if not parts:
            raise ClipError(f"{path}: track {index} has no notes; tracks with notes: {_listing(score, playing)}")
        return _clip(score, parts, path), None
    if not playing:
        raise ClipError(f"{path}: the file has no notes")
    parts = main_part(score, drums)
    if not drums and all(p.is_drum for p in parts):
        raise ClipError(f"{path}: the file holds only drum-channel notes; add --type drums, or name the track "
                        "with --track to read them as a melody")
    if len(playing) == len(parts):
        return _clip(score, parts, path), None
    used = ", ".join(_label(score, p) for p in parts)
    others = _listing(score, [p for p in playing if p not in parts])
    return _clip(score, parts, path), f"{Path(path).name}: read {used}; not read: {others} (--track picks one)"


def _clip(score: MidiScore, parts: list[TrackNotes], path: str | Path, length: float | None = None) -> Clip:
    notes = [n for p in parts for n in p.notes]
    meter = score.time_signature
    meter.validate()  # before measuring bars with it: a 0/4 meter would divide by zero
    if length is None:
        end = max((n.end for n in notes), default=0.0)
        bar = meter.beats_per_bar
        # Round before ceil so a note ending a hair past a barline by float error adds no bar.
        length = max(1, math.ceil(round(end / bar, 9))) * bar
    else:
        notes = [n for n in notes if n.start < length]
    names = {p.name for p in parts if p.name}
    name = names.pop() if len(names) == 1 else Path(path).stem
    clip = Clip(tuple(sorted(notes, key=lambda n: (n.start, n.pitch))), float(length), score.tempo, meter, None, name)
    return clip.validate()


def _track_events(notes: list[Note], offset: int, channel: int) -> list[tuple[int, int, mido.Message]]:
    """(tick, order, message) for the notes; order 0 sorts note-offs before note-ons at a tick."""
    events = []
    by_pitch: dict[int, list[tuple[int, int, Note]]] = {}
    for note in notes:
        if note.mute:
            continue
        start = offset + round(note.start * TICKS_PER_BEAT)
        end = start + max(1, round(note.duration * TICKS_PER_BEAT))
        by_pitch.setdefault(note.pitch, []).append((start, end, note))
    for pitch, spans in by_pitch.items():
        spans.sort(key=lambda s: s[0])
        for i, (start, end, note) in enumerate(spans):
            if i + 1 < len(spans) and spans[i + 1][0] < end:
                end = spans[i + 1][0]
            if end <= start:  # two notes on one tick and pitch: the later one plays
                continue
            events.append((start, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=note.velocity)))
            events.append((end, 0, mido.Message("note_off", channel=channel, note=pitch,
                                                velocity=note.release_velocity)))
    return events


def _context_events(clip: Clip, tick: int) -> list[tuple[int, int, mido.MetaMessage]]:
    ts = clip.time_signature
    return [(tick, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(clip.tempo))),
            (tick, 0, mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator))]


def _track(name: str, events: list[tuple[int, int, mido.Message]], end: int) -> mido.MidiTrack:
    track = mido.MidiTrack()
    if name:
        track.append(mido.MetaMessage("track_name", name=name))
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    return track


def write_midi(path: str | Path, clips: list[Clip], sequence: bool = False, channel: int = 0,
               drums: bool = False, name: str = "") -> Path:
    """Write clips to a type-1 file at 480 ticks per beat (see `midi_file`); return the path."""
    path = Path(path)
    midi_file(clips, sequence, channel, drums, name).save(path)
    return path


def midi_bytes(clips: list[Clip], sequence: bool = False, channel: int = 0, drums: bool = False,
               name: str = "") -> bytes:
    """The file `write_midi` would write, as bytes (for writers that open the file themselves)."""
    buffer = io.BytesIO()
    midi_file(clips, sequence, channel, drums, name).save(file=buffer)
    return buffer.getvalue()


def midi_file(clips: list[Clip], sequence: bool = False, channel: int = 0, drums: bool = False,
              name: str = "") -> mido.MidiFile:
    """Clips as a type-1 MIDI file at 480 ticks per beat.

    Default: one track per clip (named after the clip), all starting at beat 0, after a
    conductor track with the first clip's tempo and time signature. With `sequence`, the clips
    play one after another on a single track named `name`, with a tempo or meter change
    wherever a clip's differs from the one before. `drums` writes on the drum channel.
    """
    if not clips:
        raise ClipError("nothing to write: no clips")
    for clip in clips:
        clip.validate()
    channel = DRUM_CHANNEL if drums else channel
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT, charset="utf-8")
    if sequence:
        context, events, tick, previous = [], [], 0, None
        for clip in clips:
            if previous is None or (clip.tempo, clip.time_signature) != (previous.tempo, previous.time_signature):
                context += _context_events(clip, tick)
            events += _track_events(list(clip.notes), tick, channel)
            tick += round(clip.length * TICKS_PER_BEAT)
            previous = clip
        end = max([tick] + [e[0] for e in events])
        mid.tracks.append(_track("", context, end))
        mid.tracks.append(_track(name or clips[0].name, events, end))
    else:
        parts = [(clip, _track_events(list(clip.notes), 0, channel)) for clip in clips]
        ends = [max([round(clip.length * TICKS_PER_BEAT)] + [e[0] for e in events]) for clip, events in parts]
        mid.tracks.append(_track(name, _context_events(clips[0], 0), max(ends)))
        for (clip, events), end in zip(parts, ends):
            mid.tracks.append(_track(clip.name, events, end))
    return mid
