"""Every limit the server enforces, in one place: what `status` reports and docs/reliability.md lists.

A limit exists so that no client, careless or hostile, can take the worker, the memory or the
network from the others: each one is checked before the work or the memory it guards is spent.
The MIDI file reader has its own (bridge.midi_io: READ_LIMITS), since it also serves the CLI
and training.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from bridge.clip import DEFAULT_MAX_NOTES, Clip, ClipError


@dataclass(frozen=True)
class Limits:
    """The server's limits; `BridgeServer(limits=Limits(...))` or the `serve` options set them."""

    max_beats: float = 512.0  # clip length in beats, every input clip (2048 steps on a 16th grid)
    max_notes: int = DEFAULT_MAX_NOTES  # notes per clip; an empty note chunk counts as one
    queue_size: int = 8  # requests waiting for a worker; one more is answered `busy`
    max_timeout: float = 86400.0  # the largest `timeout` a request may ask, seconds
    max_window: int = 1024  # result datagrams sent before pacing, however big a `window` a request asks
    upload_ttl: float = 120.0  # seconds an unclaimed upload is kept
    max_uploads: int = 64  # unclaimed uploads held at once (oldest dropped first)
    result_cache: int = 32  # finished results `resend` and `input last` can still use
    max_registered: int = 64  # clients registered with `/bridge/register`
    messages_per_datagram: int = 256  # OSC messages read from one datagram or TCP frame
    replies_per_datagram: int = 128  # replies one datagram or frame may cause; the rest is refused
    info_bytes: int = 256 * 1024  # `models`/`status` reply bytes a UDP address may get at once...
    info_bytes_per_second: int = 64 * 1024  # ...and per second after that
    tcp_connections: int = 16  # open TCP connections; more are closed at once
    frame_bytes: int = 64 * 1024  # one SLIP frame (one OSC packet) over TCP
    unsent_bytes: int = 1024 * 1024  # replies a TCP client has not read; past it the connection is closed
    stall_seconds: float = 10.0  # a TCP client that reads none of a result for this long is disconnected
    duet_sessions: int = 16  # Duet and Follow sessions open at once; one more is answered `busy`...
    duet_idle: float = 600.0  # ...unless one has had no message for this many seconds: it is dropped

    def rows(self) -> list[tuple[str, float]]:
        """(name, value) of every limit, in declaration order: the `/bridge/limit` replies."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def check_clips(self, clips: list[Clip]) -> list[Clip]:
        """Input clips checked, none longer than `max_beats`, before a model sees them (server and CLI)."""
        for clip in clips:
            clip.validate(self.max_notes)
            if clip.length > self.max_beats:
                raise ClipError(f"clip {clip.name!r} is {clip.length:g} beats long; tools take clips of at most "
                                f"{self.max_beats:g} beats (cut it, or pick one track)")
        return clips

    @property
    def upload_notes(self) -> int:
        """Notes held by all unclaimed uploads together: two full inputs, twice over."""
        return 4 * self.max_notes
