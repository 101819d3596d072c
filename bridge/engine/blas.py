"""BLAS threads for the one kind of matmul that gains from them: wide, batched LSTM steps.

The package pins OpenBLAS to one thread (bridge/__init__.py), since step-by-step sampling of
small batches only pays the threads' hand-off cost. A MusicVAE interpolation decodes 32 rows
of a 512-unit LSTM per step, where a second thread halves the matmul (measured on 2 cores:
32x512 @ 512x2048 took 1.21 ms on one thread, 0.65 ms on two; one row through it 0.063 ms
and 0.047 ms; through a 256-unit LSTM only 16 rows or more gained). So a batch that is big
enough asks for more threads for its duration, within a budget the server sets from its
worker count, so that parallel workers never oversubscribe the cores.
"""
from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any

WIDE_UNITS = 512  # an LSTM this wide gains from threads at any batch size
MIN_ROWS = 16     # a narrower one (down to MIN_UNITS) gains from this many rows
MIN_UNITS = 256
MAX_THREADS = 2   # gains measured up to 2 threads (this project's 2-core machine)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_budget = min(MAX_THREADS, _cores())
_controller: Any = None


def set_workers(workers: int) -> None:
    """Share the cores between `workers` tool threads running at once."""
    global _budget
    _budget = max(1, min(MAX_THREADS, _cores() // max(1, workers)))


def budget() -> int:
    return _budget


def threads_for(rows: int, units: int) -> AbstractContextManager:
    """A context in which BLAS may use up to the budget's threads, if a batch of `rows` through
    `units`-wide layers is big enough to gain; otherwise a no-op."""
    global _controller
    if _budget < 2 or units < MIN_UNITS or (units < WIDE_UNITS and rows < MIN_ROWS):
        return nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController  # found on first use: keeps startup light

        _controller = ThreadpoolController()
    return _controller.limit(limits=_budget, user_api="blas")
