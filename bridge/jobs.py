"""The open tool requests: a bounded queue, the workers that take from it, and the rule that
every request ends with exactly one final reply.

A job's result, its timeout, a cancel and a shutdown race to end it; `finish` lets only the
first through. The race is decided under the job's lock, because a UDP result's `done` is sent
from the worker thread (bridge.worker) while cancels and timeouts arrive on the event loop.
A job that ends while it waits (timeout, cancel) frees its place in the queue at once. A
running job is told to stop through `stopped()`, which its tool polls at every progress report
(ToolContext.report): it turns true on cancel, at shutdown and when the deadline passes, so
the worker is free again within one report of either.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Awaitable, Callable

from bridge import live_requests as L
from bridge.clip import Clip
from bridge.errors import RequestError, error_reply
from bridge.tools import Tool
from bridge.transport import WINDOW, on_event_loop

Send = Callable[[bytes], None]


async def _no_drain() -> None:
    return None


# What the server does with a tool request, as (name, from stamp, to stamp): reading its packet
# (once decoded) up to the ACK; the queue, inputs read from Live when asked, and the hand-off to
# a worker thread; the tool; checking its clips (for a result sent over OSC and not saved, all
# but their notes, which are checked clip by clip in the next stage); saving them when asked
# and sending them, up to `done` (for TCP and delivery into Live, through the event loop).
STAGES = (("handle", "received", "acked"), ("to worker", "acked", "started"), ("tool", "started", "ran"),
          ("check", "ran", "checked"), ("send", "checked", "done"))


@dataclass(eq=False)
class Job:
    """One queued or running tool request."""

    key: tuple  # (peer, id): a client's ids are its own
    rid: str
    tool: Tool
    clips: list[Clip]
    given: dict[str, Any]
    send: Send
    timeout: float
    save: PurePosixPath | None = None  # where to write the result as MIDI, inside the output folder
    routing: L.Routing = field(default_factory=L.Routing)  # input last/live, deliver live
    drain: Callable[[], Awaitable[None]] = _no_drain  # waits until the client can take more replies
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    delivering: bool = False  # results are going out; cancel and timeout no longer apply
    deadline: float = 0.0  # time.monotonic() when the request times out, set when queued
    timer: asyncio.TimerHandle | None = None
    udp: bool = False  # replies go by UDP: `send` may be called from the worker thread
    window: int = WINDOW  # result datagrams sent before the first pause (the request's `window`)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards finished and delivering
    # time.perf_counter() as the request passes each stage (STAGES, and "queued" when it joined
    # the queue): the debug line that says where the server's time went, which
    # bench/bench_server.py reads.
    stages: dict[str, float] = field(default_factory=dict)

    def stamp(self, stage: str) -> None:
        self.stages[stage] = time.perf_counter()

    def stage_ms(self) -> dict[str, float]:
        """The ms between the stamps, named for what ran between them (STAGES), as far as
        the request got."""
        at = self.stages
        return {name: (at[end] - at[begin]) * 1000 for name, begin, end in STAGES if begin in at and end in at}

    def expired(self) -> bool:
        return not self.delivering and time.monotonic() >= self.deadline

    def stopped(self) -> bool:
        """Polled by the tool's thread at every report: whether to stop now."""
        return self.cancel.is_set() or self.expired()

    def start_delivery(self) -> bool:
        """Claim the right to send the result: False when a cancel, timeout or shutdown has
        already answered; once True, cancels and timeouts no longer apply."""
        with self.lock:
            if self.finished:
                return False
            self.delivering = True
            return True

    def end(self, unless_delivering: bool = False) -> bool:
        """Claim the final reply: True for the first caller only (and, with `unless_delivering`,
        only while the result is not going out)."""
        with self.lock:
            if self.finished or (unless_delivering and self.delivering):
                return False
            self.finished = True
            self.stamp("done")
            return True

    def timeout_reply(self) -> bytes:
        return error_reply(self.rid, "timeout", f"no result within {self.timeout:g} s")


class JobQueue:
    """Jobs waiting for a worker. Only jobs still open count toward `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._waiting: deque[Job] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return sum(not job.finished for job in self._waiting)

    def full(self) -> bool:
        return len(self) >= self.size

    def put(self, job: Job) -> None:
        self._waiting = deque(j for j in self._waiting if not j.finished)
        self._waiting.append(job)
        self._ready.set()

    async def get(self) -> Job:
        while True:
            while self._waiting:
                job = self._waiting.popleft()
                if not job.finished:
                    return job
            self._ready.clear()
            await self._ready.wait()


class Jobs:
    """Open requests by (peer, id), the queue and the workers that run them with `run`."""

    def __init__(self, queue_size: int, run: Callable[[Job], Awaitable[None]],
                 changed: Callable[[], None] = lambda: None) -> None:
        self.queue = JobQueue(queue_size)
        self.run = run
        self.changed = changed  # called when the server may have turned busy or idle
        self.running = 0
        self._open: dict[tuple, Job] = {}
        self._tasks: list[asyncio.Task] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def __contains__(self, key: tuple) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return sum(not job.finished for job in self._open.values())

    def get(self, key: tuple) -> Job | None:
        """The open job with this key; one whose final reply went out from the worker thread
        is not open any more, though the loop has not retired it yet."""
        job = self._open.get(key)
        return None if job is None or job.finished else job

    @property
    def busy(self) -> bool:
        return self.running > 0 or len(self.queue) > 0

    def start(self, workers: int) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker()) for _ in range(workers)]

    async def stop(self) -> None:
        """Answer every open request with `shutting_down` and tell running tools to stop."""
        for job in list(self._open.values()):
            job.cancel.set()
            self.finish(job, error_reply(job.rid, "shutting_down", "the server is stopping"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def submit(self, job: Job) -> None:
        """Queue a job; its deadline counts from now. RequestError `busy` when the queue is full."""
        if self.queue.full():
            raise RequestError("busy", f"{self.queue.size} request(s) already waiting; try again later")
        job.stamp("queued")
        job.deadline = time.monotonic() + job.timeout
        job.timer = asyncio.get_running_loop().call_later(job.timeout, self.expire, job)
        self._open[job.key] = job
        self.queue.put(job)
        self.changed()

    def expire(self, job: Job) -> None:
        if self.finish(job, job.timeout_reply(), unless_delivering=True):
            job.cancel.set()

    def cancel(self, job: Job, reply: bytes) -> None:
        """Stop a queued or running job (one already sending its result runs on)."""
        if self.finish(job, reply, unless_delivering=True):
            job.cancel.set()

    def finish(self, job: Job, reply: bytes, unless_delivering: bool = False) -> bool:
        """Send a job's final reply; only the first call for a job does anything. Safe from the
        worker thread: the job is then retired on the loop."""
        if not job.end(unless_delivering):
            return False
        job.send(reply)
        if self._loop is None or on_event_loop():
            self._retire(job)
        else:
            self._loop.call_soon_threadsafe(self._retire, job)
        return True

    def _retire(self, job: Job) -> None:
        if job.timer:
            job.timer.cancel()
        if self._open.get(job.key) is job:  # a new request may reuse the id as soon as `done` is out
            del self._open[job.key]
        self.changed()

    async def _worker(self) -> None:
        while True:
            job = await self.queue.get()
            self.running += 1
            self.changed()
            try:
                await self.run(job)
            finally:
                self.running -= 1
                self.changed()
