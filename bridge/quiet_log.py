"""Log lines that a flood would repeat, written at most once per interval per kind, with counts.

Ten thousand garbage datagrams must not write a megabyte of log: the first of each kind is
logged at once, the rest of that interval are counted, and the next line of that kind (or
`flush`, when the server stops) says how many were left out.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable


class QuietLog:
    """`log.warning("undecodable", "dropped %s", x)`: the kind is a fixed label, never client data."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._kinds: dict[str, list] = {}  # kind -> [time of the last line, lines left out since, level]

    def log(self, level: int, kind: str, message: str, *args: Any) -> None:
        now = self.clock()
        state = self._kinds.get(kind)
        if state is not None and now - state[0] < self.interval:
            state[1] += 1
            return
        if state is not None and state[1]:
            message += f" ({state[1]} more like it in the last {now - state[0]:.0f} s)"
        self._kinds[kind] = [now, 0, level]
        self.logger.log(level, message, *args)

    def warning(self, kind: str, message: str, *args: Any) -> None:
        self.log(logging.WARNING, kind, message, *args)

    def info(self, kind: str, message: str, *args: Any) -> None:
        self.log(logging.INFO, kind, message, *args)

    def flush(self) -> None:
        """Say how many lines of each kind were left out since its last line."""
        for kind, (_, left_out, level) in self._kinds.items():
            if left_out:
                self.logger.log(level, "%d more %s line(s) left out", left_out, kind)
        self._kinds.clear()
