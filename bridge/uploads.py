"""Input clips arriving as `/bridge/clip` headers and `/bridge/notes` chunks, held until a tool
request with the same (client, id) claims them.

Uploads get no reply of their own: a malformed header or chunk poisons its upload, and the
tool request that follows is answered with the reason. What is held is bounded three ways:
uploads expire on a timer (`upload_ttl`), at most `max_uploads` wait, and all of them
together hold at most `Limits.upload_notes` notes; the oldest go first.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from bridge import protocol as P
from bridge.clip import ClipError
from bridge.limits import Limits
from bridge.quiet_log import QuietLog


@dataclass
class Upload:
    assembly: P.ClipAssembly
    touched: float = field(default_factory=time.monotonic)
    error: Exception | None = None  # the first bad header or chunk: the tool request's answer


class Uploads:
    """Uploads keyed by (peer, request id); `start` runs the expiry timer, `stop` ends it."""

    def __init__(self, limits: Limits, max_inputs: int, quiet: QuietLog) -> None:
        self.limits = limits
        self.max_inputs = max_inputs
        self.quiet = quiet
        self._held: OrderedDict[tuple, Upload] = OrderedDict()  # least recently touched first
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._held)

    def values(self) -> list[Upload]:
        return list(self._held.values())

    @property
    def notes(self) -> int:
        return sum(upload.assembly.n_notes for upload in self._held.values())

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._sweep_interval, self._sweep)

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()

    @property
    def _sweep_interval(self) -> float:
        return max(0.01, min(1.0, self.limits.upload_ttl / 4))

    def _sweep(self) -> None:
        self.trim()
        self.start()

    def new(self) -> Upload:
        return Upload(P.ClipAssembly(self.max_inputs, self.limits.max_notes, self.limits.max_beats))

    def add(self, key: tuple, address: str, args: list) -> None:
        """Store a header or a chunk (args after the id); a bad one poisons the upload."""
        upload = self._held.pop(key, None) or self.new()
        upload.touched = time.monotonic()
        self._held[key] = upload
        if upload.error is None:
            try:
                if address == P.CLIP:
                    upload.assembly.add_header(args)
                else:
                    upload.assembly.add_chunk(args)
            except (ClipError, P.ProtocolError) as exc:
                self.quiet.info("upload refused", "upload %s refused: %s", key, exc)
                upload.error = exc
        self.trim()

    def peek(self, key: tuple) -> Upload | None:
        return self._held.get(key)

    def take(self, key: tuple) -> Upload | None:
        return self._held.pop(key, None)

    def trim(self) -> None:
        """Drop uploads nobody claimed in time, and the oldest while too many or too many notes."""
        now = time.monotonic()
        total = self.notes
        while self._held:
            key, oldest = next(iter(self._held.items()))
            if (now - oldest.touched < self.limits.upload_ttl and len(self._held) <= self.limits.max_uploads
                    and total <= self.limits.upload_notes):
                break
            total -= oldest.assembly.n_notes
            del self._held[key]
            self.quiet.info("upload dropped", "dropped unclaimed upload %s", key)
