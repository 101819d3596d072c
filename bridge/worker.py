"""Running one job: inputs (uploaded, the last result, or read from Live) -> the tool in a worker
thread -> the result checked, saved, delivered into Live or streamed back -> `done`.

The tool runs off the event loop, so `ping` and `cancel` are answered while a model works. Its
ToolContext polls `Job.stopped` at every progress report: a cancel, a shutdown or the deadline
stops the model there, and the worker is free for the next job. A result for a UDP client is
checked and sent from the same worker thread, `done` included; the loop learns of it after.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

from bridge import live_requests as L
from bridge import protocol as P
from bridge.ableton import AbletonOSC
from bridge.clip import Clip
from bridge.errors import RequestError, error_code, error_reply
from bridge.jobs import Job
from bridge.limits import Limits
from bridge.results import Results
from bridge.saving import is_drums, save_midi
from bridge.tools import ToolContext
from bridge.transport import BURST, PAUSE

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1  # at most ~10 progress messages a second per request


def _checks_as_it_sends(job: Job) -> bool:
    """Whether a result's notes are checked clip by clip as its clips go out, each clip's
    before its first datagram, rather than all before the first: for a result sent over OSC
    and not saved. The client starts reading one clip's check after the tool ends, not all
    of them (generate drums at 16 variations x 8 bars: 2,197 notes, 0.6 ms). A note the
    bridge refuses can then end the request in `error` after whole clips were sent, which
    every client drops: a result counts only at `done` (docs/protocol.md). Clips written into
    Live or to a file are all checked first."""
    return job.routing.deliver == "osc" and not job.save


def _replies(job: Job, clips: list[Clip], notices: list[str]) -> Iterator[bytes | None]:
    """What follows a result's tool run, before `done`: its clips (unless delivered into Live)
    and notices, with None where the sender pauses: after the first `job.window` datagrams
    (the client's, or transport.WINDOW), then every BURST, never after the last. Each clip's
    notes are checked before its first datagram when _checks_as_it_sends (ClipError)."""
    streamed = clips if job.routing.deliver == "osc" else []
    check, sent = _checks_as_it_sends(job), 0
    for index, clip in enumerate(streamed):
        if check:
            clip.validate_notes()
        for data in P.clip_messages(P.RESULT, P.RESULT_NOTES, job.rid, clip, index, len(clips)):
            if sent >= job.window and (sent - job.window) % BURST == 0:
                yield None
            yield data
            sent += 1
    for text in notices:
        yield P.message(P.NOTICE, job.rid, P.truncate(text))


class Runner:
    def __init__(self, store: Any, limits: Limits, ableton: AbletonOSC, results: Results, output_dir: Path,
                 finish: Callable[..., bool], workers: int) -> None:
        self.store, self.limits, self.ableton, self.results = store, limits, ableton, results
        self.output_dir, self.finish = output_dir, finish
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="bridge-tool")

    def stop(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        # A UDP result goes out from the worker thread, `done` included: the client has it
        # without the thread waking the loop first. Delivery into Live and TCP need the loop.
        direct = job.udp and job.routing.deliver == "osc"
        ctx = ToolContext(models=self.store, progress=self._progress(job, loop, direct), cancelled=job.stopped)
        try:
            inputs = job.clips
            if job.routing.live:
                inputs = self.limits.check_clips(await L.prepare_inputs(job.tool, job.routing, job.clips,
                                                                         self.ableton))
            clips = await loop.run_in_executor(self.executor, self._work, job, inputs, ctx, direct)
            if clips is None:  # a cancel, timeout or shutdown answered first
                return
            if not direct:
                if job.routing.deliver == "live":
                    for index, slot in enumerate(await L.deliver(job.tool, job.routing, clips, self.ableton)):
                        job.send(P.message(L.DELIVERED, job.rid, index, job.routing.track, slot))
                for data in _replies(job, clips, ctx.notices):
                    if data is None:
                        await job.drain()
                    else:
                        job.send(data)
                self.results.put(job.key, clips)  # checked whole by now
                self.finish(job, P.message(P.DONE, job.rid, len(clips)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = error_code(exc)
            if job.expired():  # the tool stopped at its deadline, before the loop's timer fired
                self.finish(job, job.timeout_reply())
                return
            if code == "internal":
                log.error("tool %s failed on request %s", job.tool.name, job.rid, exc_info=exc)
            self.finish(job, error_reply(job.rid, code, str(exc) or type(exc).__name__))
            return
        # What the server adds to the model, per request (bench/bench_server.py reads these lines).
        if log.isEnabledFor(logging.DEBUG):
            ms = job.stage_ms()  # the tool's own time first: no thread hand-off in it
            stages = ", ".join(f"{name} {value:.3f}" for name, value in ms.items() if name != "tool")
            log.debug("request %s %s: tool %.3f ms, queued to done %.3f ms, %d clip(s); stages ms: %s", job.rid,
                      job.tool.name, ms["tool"], (job.stages["done"] - job.stages["queued"]) * 1000, len(clips),
                      stages)

    def _work(self, job: Job, inputs: list[Clip], ctx: ToolContext, direct: bool) -> list[Clip] | None:
        """In the worker thread: the tool, its clips checked and saved and, when `direct`, sent
        with `done`. None when a cancel, timeout or shutdown answered while the tool ran."""
        job.stamp("started")
        clips = job.tool(inputs, job.given, ctx)
        job.stamp("ran")
        notes_now = not _checks_as_it_sends(job)
        clips = [clip.validate(self.limits.max_notes, notes=notes_now) for clip in clips]
        job.stamp("checked")
        if not job.start_delivery():
            return None
        if job.save and clips:
            self._save(job, clips)
        if direct:
            for data in _replies(job, clips, ctx.notices):
                if job.finished:  # shutting down: the final reply is out, and nothing is kept
                    return clips
                if data is None:
                    time.sleep(PAUSE)
                else:
                    job.send(data)
            self.results.put(job.key, clips)  # checked whole by now
            self.finish(job, P.message(P.DONE, job.rid, len(clips)))
        return clips

    def _save(self, job: Job, clips: list[Clip]) -> None:
        """Write the result where the request's `save` asked; a full disk is the user's to fix, not a bug."""
        try:
            save_midi(self.output_dir, job.save, clips, is_drums(job.tool, job.given), job.tool.name)
        except OSError as exc:
            raise RequestError("save_failed", f"could not save {job.save.name}: {exc.strerror or exc}") from None

    def _progress(self, job: Job, loop: asyncio.AbstractEventLoop, direct: bool) -> Callable[[float, str], None]:
        """A progress callback for the tool's thread, rate-limited: it sends from the thread when
        the result will (so progress cannot arrive after the result), else posts to the loop."""
        last = [0.0]

        def progress(fraction: float, text: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                args = (job, float(fraction), P.truncate(str(text)))
                if direct:
                    self._send_progress(*args)
                else:
                    loop.call_soon_threadsafe(self._send_progress, *args)

        return progress

    @staticmethod
    def _send_progress(job: Job, fraction: float, text: str) -> None:
        with job.lock:  # a final reply claimed on the loop goes out after this, or this not at all
            if not job.finished and not job.delivering:
                job.send(P.message(P.PROGRESS, job.rid, fraction, text))
