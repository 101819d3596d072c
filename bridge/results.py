"""Finished results, kept so that `resend` can send a lost chunk again and `input last` can
start the client's next request from them; the oldest go when `result_cache` are held.
Worker threads put results while the loop reads them, hence the lock."""
from __future__ import annotations

import threading
from collections import OrderedDict

from bridge.clip import Clip


class Results:
    def __init__(self, size: int) -> None:
        self.size = size
        self._clips: OrderedDict[tuple, list[Clip]] = OrderedDict()  # (peer, id) -> clips, oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clips)

    def put(self, key: tuple, clips: list[Clip]) -> None:
        with self._lock:
            self._clips.pop(key, None)
            self._clips[key] = clips
            while len(self._clips) > self.size:
                self._clips.popitem(last=False)

    def get(self, key: tuple) -> list[Clip] | None:
        with self._lock:
            return self._clips.get(key)

    def last(self, peer: tuple) -> list[Clip] | None:
        """The newest result this client received (what `input last` uses)."""
        with self._lock:
            return next((clips for (owner, _), clips in reversed(self._clips.items()) if owner == peer), None)
