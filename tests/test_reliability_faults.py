"""Faults the bridge must survive (issue #9): broken bundles, vanishing clients, cancelled work,
and writes cut short. A training run killed with SIGKILL is tests/test_train.py's
test_killed_run_resumes_from_its_last_checkpoint.
"""
import hashlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bridge import protocol as P
from bridge.bundle import atomic_write, save_bundle
from bridge.client import BridgeClient
from bridge.clip import Clip, Note
from bridge.model_store import ModelStore
from bridge.models import MODEL_CLASSES
from fake_bridge import ANY_METER
from test_reliability import quick_store
from test_server import CLIP, REPO, Raw, loop, start, tcp_frames, upload  # noqa: F401  (fixtures used by name)


def settled(server, timeout: float = 5.0) -> bool:
    """Whether every job has left the server's tables within `timeout` (a busy CI machine
    can take longer than a fixed sleep to finish the abandoned results)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(server.jobs) == 0 and server.jobs.running == 0:
            return True
        time.sleep(0.05)
    return False


# --- bundles that must be refused at load ---------------------------------------------------------

class Transpose:
    """A test-only model class: continues a clip by transposing it by the bundle's `shift` weight."""

    def __init__(self, shift: int) -> None:
        self.shift = shift

    @classmethod
    def from_bundle(cls, bundle):
        return cls(int(bundle.weights["shift"][0]))

    def continue_clip(self, clip, params, ctx):
        return [clip.with_notes([Note(n.pitch + self.shift, n.start, n.duration) for n in clip.notes])]


def make_bundle(folder: Path, name: str) -> Path:
    config = {"name": name, "model_class": "test_transpose", "kind": "melody", "tools": ["continue"], **ANY_METER}
    return save_bundle(folder / name, config, {"shift": np.array([2.0])}, f"# {name}\nTest double.\n")


def rewrite_sums(path: Path) -> None:
    """Make SHA256SUMS match the files again, as a careless copy tool or hand edit would."""
    sums = "".join(f"{hashlib.sha256((path / f).read_bytes()).hexdigest()}  {f}\n"
                   for f in ("config.json", "weights.npz", "MODEL_CARD.md"))
    (path / "SHA256SUMS").write_text(sums)


def test_bad_bundles_are_refused_with_a_reason_and_the_good_one_serves(tmp_path, monkeypatch, start):
    monkeypatch.setitem(MODEL_CLASSES, "test_transpose", Transpose)
    make_bundle(tmp_path, "good")
    flipped = make_bundle(tmp_path, "flipped") / "weights.npz"
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    for name, resum in (("cut", False), ("cut_resummed", True)):
        weights = make_bundle(tmp_path, name) / "weights.npz"
        weights.write_bytes(weights.read_bytes()[:100])
        if resum:
            rewrite_sums(weights.parent)

    store = ModelStore.from_dir(tmp_path)
    assert [item.name for item in store.loaded] == ["good"]
    assert store.refused == {
        "cut": "bundle cut: checksum mismatch for weights.npz (file changed or corrupted)",
        "cut_resummed": store.refused["cut_resummed"],
        "flipped": "bundle flipped: checksum mismatch for weights.npz (file changed or corrupted)",
    }
    assert store.refused["cut_resummed"].startswith("bundle cut_resummed: weights.npz cannot be read: ")

    server = start(store=store)
    with BridgeClient(port=server.port, timeout=5) as client:
        assert client.status().refused == 3
        assert client.models()["refused"] == store.refused
        result = client.run("continue", [CLIP])
    assert [n.pitch for n in result[0].notes] == [n.pitch + 2 for n in CLIP.sorted_notes()]


# --- a client that vanishes while its result is on the way ----------------------------------------

class Big:
    """Sixteen 300-note clips: ~180 datagrams, so a client can leave halfway through."""

    def generate(self, clips, params, ctx):
        notes = [Note(60 + i % 12, i / 4, 0.25) for i in range(300)]
        return [Clip(notes, 80.0, name=f"big {v}") for v in range(16)]


def big_store() -> ModelStore:
    store = quick_store()
    store.loaded[0].model = Big()
    return store


def test_udp_client_gone_mid_result_costs_nothing(start, caplog):
    caplog.set_level(logging.DEBUG)
    server = start(store=big_store())
    for attempt in range(3):
        raw = Raw(server.port)
        raw.send(P.PREFIX + "generate", "g")
        while (reply := raw.recv(5)) is not None and reply[0] != P.RESULT_NOTES:
            pass
        assert reply is not None
        raw.close()  # gone: the rest goes to a closed port (ICMP port unreachable)
    assert settled(server), (len(server.jobs), server.jobs.running)
    raw = Raw(server.port)
    # 16 clips of 10 datagrams: room for all of them, so that a test process descheduled on a
    # loaded machine checks the server, not its own socket's default ~200 kB buffer.
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    raw.send(P.PREFIX + "generate", "after")
    assert raw.until_final("after", timeout=5)[-1] == (P.DONE, ["after", 16])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_tcp_client_gone_mid_result_costs_nothing(start, caplog):
    caplog.set_level(logging.DEBUG)
    server = start(store=big_store(), tcp_port=0)
    for attempt in range(3):
        sock = socket.create_connection(("127.0.0.1", server.tcp_port), timeout=5)
        sock.sendall(P.slip_encode(P.message(P.PREFIX + "generate", "g")))
        assert sock.recv(100)  # the ack, maybe more: the result has started
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # reset, not a polite close
    assert settled(server), (len(server.jobs), server.jobs.running)
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=5) as sock:
        sock.sendall(P.slip_encode(P.message(P.PREFIX + "generate", "after")))
        assert tcp_frames(sock, "after")[-1] == (P.DONE, ["after", 16])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# --- cancellation stops the work ------------------------------------------------------------------

class Counting:
    """Reports progress over 2000 steps of 1 ms and records how far it got and how it ended."""

    STEPS = 2000

    def __init__(self) -> None:
        self.steps = 0
        self.ended: str | None = None
        self.exited = threading.Event()

    def continue_clip(self, clip, params, ctx):
        try:
            for self.steps in range(self.STEPS):
                ctx.report(self.steps / self.STEPS, "counting")
                time.sleep(0.001)
            self.ended = "completed"
            return [clip]
        except BaseException as exc:
            self.ended = type(exc).__name__
            raise
        finally:
            self.exited.set()


def test_cancel_stops_the_running_tool_at_its_next_report(start):
    model = Counting()
    store = quick_store()
    store.loaded[0].model = model
    server = start(store=store)
    raw = Raw(server.port)
    upload(raw, "job", [CLIP])
    raw.send(P.PREFIX + "continue", "job")
    assert raw.recv() == (P.ACK, ["job"])
    assert raw.recv()[0] == P.PROGRESS  # running
    cancelled_at = time.monotonic()
    raw.send(P.CANCEL, "stop", "job")
    assert raw.error("job") == ("cancelled", "cancelled by request stop")
    assert model.exited.wait(2)
    assert time.monotonic() - cancelled_at < 0.5
    assert model.ended == "Cancelled" and model.steps < Counting.STEPS // 2
    deadline = time.monotonic() + 1.0  # the worker notices the tool's end on the next loop turn
    while time.monotonic() < deadline and (server.jobs.running or len(server.jobs.queue)):
        time.sleep(0.01)
    raw.send(P.STATUS, "s")
    assert raw.until_final("s")[0][1][1:3] == [0, 0]  # the worker is free again


# --- atomic writes ---------------------------------------------------------------------------------

def test_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "weights.npz"
    target.write_bytes(b"old contents")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"new contents" * 1000)
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["weights.npz"]


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path):
    target = tmp_path / "config.json"
    atomic_write(target, b"{}")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


WRITER = """
import sys
from pathlib import Path
from bridge.bundle import atomic_write
path, size = Path(sys.argv[1]), int(sys.argv[2])
payloads = [b"a" * size, b"b" * (size // 2)]
atomic_write(path, payloads[0])
print("ready", flush=True)
for i in range(10**9):
    atomic_write(path, payloads[i % 2])
"""


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.037])
def test_sigkill_during_atomic_writes_leaves_a_whole_file(tmp_path, delay):
    size = 1 << 20
    target = tmp_path / "checkpoint.npz"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(size)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert target.read_bytes() in (b"a" * size, b"b" * (size // 2))
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(n.startswith(".checkpoint.npz.") and n.endswith(".tmp") for n in leftovers), leftovers
