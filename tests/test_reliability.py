"""Reliability of the running server under hostile and heavy input (issue #9).

Beyond tests/test_server.py's fuzz test (random bytes and arguments: the server survives),
these check the stronger promise: every request with an id gets exactly one final reply,
whatever its arguments' types, counts and values, and whatever uploads came before it; many
clients against a small queue lose nothing; memory stays bounded after many requests.
A fake model (a test double, here only) answers every tool at once, so thousands of round
trips fit in seconds.
"""
import itertools
import logging
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge import protocol as P
from bridge.bundle import Bundle
from fake_bridge import ANY_METER
from bridge.clip import Clip, Note
from bridge.model_store import Loaded, ModelStore
from bridge.limits import Limits
from bridge.tools import TOOLS
from test_server import CLIP, FINALS, Raw, loop, server, start, upload  # noqa: F401  (fixtures used by name)

LIMITS = Limits()
SMALL = Clip([Note(60, 0.0, 1.0), Note(64, 1.0, 1.0)], 4.0, name="small")


class Quick:
    """Answers every tool at once with small clips; `delay` seconds of work per request, if set."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def _work(self, ctx) -> None:
        ctx.report(0.5, "working")
        time.sleep(self.delay)

    def generate(self, clips, params, ctx):
        self._work(ctx)
        return [SMALL]

    def continue_clip(self, clip, params, ctx):
        self._work(ctx)
        return [clip]

    def interpolate(self, a, b, params, ctx):
        self._work(ctx)
        return [a, b]

    def groove(self, clip, params, ctx):
        self._work(ctx)
        return [clip]

    drumify = groove


def quick_store(delay: float = 0.0) -> ModelStore:
    """One fake model per family, serving every tool, so any valid request can run to `done`."""
    model = Quick(delay)
    return ModelStore(loaded=[
        Loaded(Bundle(Path(kind), {"name": kind, "kind": kind, "tools": list(TOOLS), "model_class": "fake", **ANY_METER},
                      {}), model)
        for kind in ("melody", "drums")])


def finals(replies: list) -> Counter:
    """How many final replies (done or error) each request id got."""
    return Counter(args[0] for address, args in replies if address in FINALS and args and isinstance(args[0], str))


# --- wrong types, counts and values on valid addresses ----------------------------------------

TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=10)
NASTY_FLOATS = st.sampled_from([float("nan"), float("inf"), -float("inf"), -1e30, 1e30, -0.0, 3.4e38, 1e-45])
# (OSC type tag, value): every type python-osc can put on the wire, with the extremes of each.
TYPED = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: ("i", v)),
    st.sampled_from([-(2**31), -1, 0, 2**31 - 1]).map(lambda v: ("i", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: ("h", v)),
    st.one_of(st.floats(width=32), NASTY_FLOATS).map(lambda v: ("f", v)),
    st.floats().map(lambda v: ("d", v)),
    TEXT.map(lambda v: ("s", v)),
    st.sampled_from([("T", True), ("F", False), ("N", None)]),
    st.binary(min_size=1, max_size=8).map(lambda v: ("b", v)),
)
# reply_port and register are left out: they send replies elsewhere, and this test counts them.
KEYS = st.sampled_from(sorted({p.name for t in TOOLS.values() for p in t.params} | {"timeout", "save", "colour"}))
REQUESTS = [P.PING, P.STATUS, P.MODELS, P.CANCEL, P.RESEND, *(P.PREFIX + name for name in TOOLS)]


def typed_message(address: str, rid: str, positional: list, pairs: list, dangling: list) -> bytes:
    builder = OscMessageBuilder(address)
    builder.add_arg(rid, "s")
    for key, (tag, value) in pairs:
        positional = positional + [("s", key), (tag, value)]
    for tag, value in positional + dangling:
        builder.add_arg(value, tag)
    return builder.build().dgram


def test_every_request_gets_exactly_one_final_reply_whatever_its_arguments(start, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    server = start(store=quick_store(), default_timeout=2.0, output_dir=tmp_path / "out")
    raw = Raw(server.port)
    ids = itertools.count()
    seen = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(REQUESTS), st.lists(TYPED, max_size=3), st.lists(st.tuples(KEYS, TYPED), max_size=4),
           st.lists(TYPED, max_size=1))
    def check(address, positional, pairs, dangling):
        rid = f"r{next(ids)}"
        raw.send_bytes(typed_message(address, rid, positional, pairs, dangling))
        seen.extend(raw.until_final(rid, timeout=5))

    check()
    seen.extend(raw.skipped + raw.quiet(0.3))
    counts = finals(seen)
    assert set(counts.values()) == {1}, {rid: n for rid, n in counts.items() if n != 1}
    assert len(counts) == next(ids)  # every id was answered (until_final already failed otherwise)
    raw.send(P.PING, "alive")
    assert raw.until_final("alive")[-1] == (P.DONE, ["alive", 0])
    assert len(server.jobs) == 0
    assert all(p.suffix in (".mid", ".midi") for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("target", ["ghost", "7", 7, 7.0, "x" * 64, "ü𝄞"])
def test_unknown_ids_in_resend_and_cancel_are_refused_by_name(server, target):
    raw = Raw(server.port)
    raw.send(P.CANCEL, "c", target)
    assert raw.error("c") == ("unknown_request", f"no request {P.request_id(target)} is running")
    raw.send(P.RESEND, P.request_id(target), 0, -1)
    assert raw.error(P.request_id(target))[0] == "unknown_request"


def test_random_upload_sequences_end_in_one_reply_and_bounded_memory(start, caplog):
    caplog.set_level(logging.WARNING)
    server = start(store=quick_store(), max_notes=500)
    raw = Raw(server.port)
    ids = itertools.count()
    small = st.integers(-1, 4)
    number = st.one_of(st.integers(-3, 140), NASTY_FLOATS, st.floats(-100, 100))
    note = st.tuples(number, number, number, number, st.integers(0, 1), number, number, number)
    header = st.tuples(small, small, st.one_of(st.integers(-1, 70), st.just(10**9)), st.integers(-1, 4),
                       number, number, st.sampled_from([4, 3, 0, -4]), st.sampled_from([4, 8, 5]), TEXT)
    # Up to 200 notes in one datagram: far more than the 30 a well-behaved chunk carries.
    chunk = st.tuples(small, small, small, st.lists(note, max_size=200))
    codes = {"done", "bad_clip", "bad_request", "missing_input", "bad_input"}

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(header.map(lambda h: (P.CLIP, h)), chunk.map(lambda c: (P.NOTES, c))), max_size=6),
           st.sampled_from(list(TOOLS)))
    def check(messages, tool):
        rid = f"u{next(ids)}"
        for address, fields in messages:
            if address == P.CLIP:
                raw.send(address, rid, *fields)
            else:
                raw.send(address, rid, *fields[:3], *(value for n in fields[3] for value in n))
        raw.send(P.PREFIX + tool, rid)
        replies = raw.until_final(rid, timeout=5)
        address, args = replies[-1]
        assert address == P.DONE or args[1] in codes, args
        assert server.uploads.notes <= 2 * 2 * 500

    check()
    assert set(finals(raw.skipped + raw.quiet(0.3)).values()) <= {1}
    raw.send(P.PING, "alive")
    assert raw.until_final("alive")[-1] == (P.DONE, ["alive", 0])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# --- load -------------------------------------------------------------------------------------

def test_many_clients_with_a_small_queue_lose_no_request(start):
    """16 clients, 3 requests in flight each, against a queue of 2: each ends in done or busy."""
    server = start(store=quick_store(delay=0.002), queue_size=2)
    outcomes: list[Counter] = []

    def client(index: int) -> None:
        raw = Raw(server.port)
        replies = []
        for round_ in range(6):
            rids = [f"{index}-{round_}-{k}" for k in range(3)]
            upload(raw, rids[0], [CLIP])
            raw.send(P.PREFIX + "continue", rids[0])
            for rid in rids[1:]:
                raw.send(P.PREFIX + "generate", rid, "variations", 2)
            pending = set(rids)
            while pending:
                reply = raw.recv(10)
                assert reply is not None, f"no final reply for {pending}"
                replies.append(reply)
                if reply[0] in FINALS:
                    pending.discard(reply[1][0])
        replies += raw.quiet(0.2)
        raw.close()
        counts = finals(replies)
        assert len(counts) == 18 and set(counts.values()) == {1}, counts
        outcomes.append(Counter("done" if a == P.DONE else args[1] for a, args in replies if a in FINALS))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 16  # a client whose assertion failed never appends
    total = sum(outcomes, Counter())
    assert set(total) == {"done", "busy"} and sum(total.values()) == 16 * 18, total
    assert len(server.jobs) == 0 and len(server.jobs.queue) == 0


def test_memory_stays_bounded_after_many_requests(start):
    """Results, uploads and jobs are capped: once the caches are full (the warm-up fills them),
    150 more requests and 30 more abandoned uploads hold no more memory, while keeping every
    result or upload would take ~5 MB."""
    server = start(store=quick_store())
    raw = Raw(server.port)

    def requests(first: int, n: int, orphans: int) -> None:
        for i in range(first, first + orphans):
            upload(raw, f"orphan{i}", [CLIP])  # never claimed
        for i in range(first, first + n):
            upload(raw, f"m{i}", [CLIP])
            raw.send(P.PREFIX + "continue", f"m{i}")
            assert raw.until_final(f"m{i}")[-1] == (P.DONE, [f"m{i}", 1])

    tracemalloc.start()
    try:
        requests(0, LIMITS.result_cache + 8, LIMITS.max_uploads + 6)
        before = tracemalloc.get_traced_memory()[0]
        requests(1000, 150, 30)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000, f"{grown / 1e6:.1f} MB more after 150 requests"
    assert len(server.results) <= LIMITS.result_cache and len(server.uploads) <= LIMITS.max_uploads and not len(server.jobs)
