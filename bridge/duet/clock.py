"""The transport as the bridge sees it: beats (quarter notes) against wall-clock seconds.

A client reports where its transport is (each note carries its beat; `clock` messages carry the
beat, the tempo and whether it plays). Between reports the position runs on at the tempo, so
the bridge can tell when a pause has lasted long enough and when a bar is due without a
message per tick. The latest report wins: a client's transport is the truth, the bridge's
estimate only has to hold until the next one.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TransportClock:
    beat: float = 0.0  # the transport's position at `wall`
    wall: float = 0.0  # seconds on the owner's monotonic clock
    tempo: float = 120.0
    playing: bool = True

    def sync(self, beat: float, wall: float, tempo: float | None = None, playing: bool = True) -> None:
        self.beat, self.wall, self.playing = float(beat), float(wall), playing
        if tempo is not None:
            self.tempo = float(tempo)

    def beat_at(self, wall: float) -> float:
        if not self.playing:
            return self.beat
        return self.beat + (wall - self.wall) * self.tempo / 60.0

    def wall_at(self, beat: float) -> float:
        return self.wall + (beat - self.beat) * 60.0 / self.tempo

    def beats(self, seconds: float) -> float:
        """A duration in seconds as beats at the present tempo."""
        return seconds * self.tempo / 60.0
