"""Every example exchange in docs/protocol.md, sent to a real bridge serving the shipped bundles.

The docs write each exchange as `→` lines sent and `←` lines answered, arguments as they travel
("text" a string, 7 an int, 0.8 a float; `*` any one value, a trailing `...` the rest, `← ...`
any number of messages). Each `→` line goes out as the docs say a reader would send it: with
liblo's oscsend when it is installed (else from a fresh socket, as oscsend does), so an example
whose replies need `reply_port` fails here as it would for the reader; exchanges marked
"(one socket)" go from one socket, as the docs ask. Progress messages are rate-limited by
time, so a run of them counts as one. Ports 9800 and 9000 in the docs are listeners here.
"""
from __future__ import annotations

import re
import select
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fake_ableton import FakeAbleton, LiveClip, LiveTrack
from fake_bridge import free_udp_port, running_server
from pythonosc.osc_message import OscMessage

from bridge import protocol as P
from bridge.ableton import AbletonOSC
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
OSCSEND = shutil.which("oscsend")
DOC_PORTS = (9800, 9000)  # the reply ports the examples name
ANY, REST = object(), object()
TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
COMMENT = re.compile(r'\s+\([^"]*\)$')  # "(on port 9000)", "(slot 2 already held a clip)"


@dataclass
class Expected:
    address: str | None  # None: `← ...`, any number of messages
    args: list = field(default_factory=list)
    port: int | None = None  # "(on port N)": must arrive there

    def matches(self, address: str, args: list, port: int) -> bool:
        if address != self.address or (self.port is not None and port != self.port):
            return False
        for i, want in enumerate(self.args):
            if want is REST:
                return True
            if i >= len(args) or not _same(want, args[i]):
                return False
        return len(args) == len(self.args)

    def __str__(self) -> str:
        return f"{self.address} {self.args}"


@dataclass
class Exchange:
    line: int
    one_socket: bool
    sends: list[tuple[str, list]] = field(default_factory=list)
    expects: list[Expected] = field(default_factory=list)


def _same(want: Any, got: Any) -> bool:
    if want is ANY:
        return True
    if isinstance(want, str) and want.endswith("..."):
        return isinstance(got, str) and got.startswith(want[:-3])
    if isinstance(want, float):
        return isinstance(got, float) and abs(got - want) <= 1e-6 * max(1.0, abs(want))
    return type(got) is type(want) and got == want


def _value(quoted: str | None, bare: str) -> Any:
    if quoted is not None:
        return quoted
    if bare == "*":
        return ANY
    if bare == "...":
        return REST
    if re.fullmatch(r"-?\d+", bare):
        return int(bare)
    return float(bare) if re.fullmatch(r"-?\d+\.\d*", bare) else bare  # a bare word: an error code


def parse(text: str) -> list[Exchange]:
    """Exchanges: runs of consecutive indented lines holding at least one `→` line."""
    exchanges, current = [], None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not raw.startswith("    ") or not line:
            current = None
            continue
        if current is None:
            current = Exchange(number, one_socket=False)
            exchanges.append(current)
        if line.startswith("(one socket"):
            current.one_socket = True
            continue
        if line[:1] not in "→←":
            continue
        port = re.search(r"\(on port (\d+)\)$", line)
        body = COMMENT.sub("", line[1:].strip())
        address, _, rest = body.partition(" ")
        args = [_value(m.group(1), m.group(2)) for m in TOKEN.finditer(rest)]
        if line[0] == "→":
            current.sends.append((address, args))
        else:
            current.expects.append(Expected(None if address == "..." else address, args,
                                            int(port.group(1)) if port else None))
    return [e for e in exchanges if e.sends]


def oscsend_argv(port: int, address: str, args: list) -> list[str]:
    """The oscsend command line the docs tell a reader to type for one `→` line."""
    types = "".join("s" if isinstance(a, str) else "i" if isinstance(a, int) else "f" for a in args)
    return [OSCSEND, "localhost", str(port), address, types, *(a if isinstance(a, str) else repr(a) for a in args)]


class Client:
    """The reader: listeners on the docs' reply ports, a session socket, and a way to send."""

    def __init__(self, bridge: int) -> None:
        self.bridge = bridge
        self.listeners = {doc: self._bound() for doc in DOC_PORTS}
        self.ports = {doc: sock.getsockname()[1] for doc, sock in self.listeners.items()}
        self.session = self._bound()

    @staticmethod
    def _bound() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        return sock

    def send(self, address: str, args: list, one_socket: bool) -> None:
        args = [self.ports.get(a, a) if isinstance(a, int) else a for a in args]
        if one_socket:
            self.session.sendto(P.message(address, *args), ("127.0.0.1", self.bridge))
        elif OSCSEND:
            done = subprocess.run(oscsend_argv(self.bridge, address, args), capture_output=True, text=True, timeout=10)
            assert done.returncode == 0, done.stderr
        else:
            with self._bound() as once:
                once.sendto(P.message(address, *args), ("127.0.0.1", self.bridge))

    def replies(self, ids: set[str], finals: int, timeout: float = 30.0) -> list[tuple[str, list, int]]:
        """(address, args, docs port it came in on) for these request ids, until `finals` final
        replies came and then a quiet spell; replies for other ids (status pushes) are dropped."""
        sockets = {sock: doc for doc, sock in self.listeners.items()} | {self.session: None}
        out, deadline, done_at = [], time.monotonic() + timeout, None
        while time.monotonic() < (deadline if done_at is None else done_at):
            ready, _, _ = select.select(list(sockets), [], [], 0.05)
            for sock in ready:
                msg = OscMessage(sock.recv(65536))
                if msg.params[:1] and msg.params[0] in ids:
                    out.append((msg.address, list(msg.params), sockets[sock]))
            if done_at is None and sum(a in (P.DONE, P.ERROR) for a, _, _ in out) >= finals:
                done_at = time.monotonic() + 0.3
        return out

    def close(self) -> None:
        for sock in (*self.listeners.values(), self.session):
            sock.close()


def check(expects: list[Expected], got: list[tuple[str, list, int]]) -> str | None:
    """Where the replies depart from the docs, or None."""
    if not any(e.address == P.PROGRESS for e in expects):
        got = [g for g in got if g[0] != P.PROGRESS]
    got = [g for i, g in enumerate(got) if not (g[0] == P.PROGRESS and i and got[i - 1][0] == P.PROGRESS)]
    at, skipping = 0, False
    for want in expects:
        if want.address is None:
            skipping = True
            continue
        while at < len(got) and not want.matches(*got[at]):
            if not skipping:
                return f"expected {want}, got {got[at][:2]}"
            at += 1
        if at == len(got):
            return f"expected {want}, but no such reply came"
        at, skipping = at + 1, False
    if at < len(got) and not skipping:
        return f"unexpected replies after the last one the docs show: {[g[:2] for g in got[at:]]}"
    return None


EXCHANGES = parse(DOC.read_text())


def test_the_docs_hold_the_exchanges_this_test_runs():
    arrows = sum(line.strip().startswith("→") for line in DOC.read_text().splitlines())
    assert arrows == sum(len(e.sends) for e in EXCHANGES) >= 15
    assert any(e.one_socket for e in EXCHANGES) and any(not e.one_socket for e in EXCHANGES)


def test_the_oscsend_line_in_the_docs_is_the_ping_example():
    (ping,) = [e for e in EXCHANGES if e.sends[0][0] == P.PING]
    argv = oscsend_argv(9700, *ping.sends[0])
    assert f"    oscsend {' '.join(argv[1:])}\n" in DOC.read_text()
    assert oscsend_argv(9700, "/x", [0.8, "a b"])[4:] == ["fs", "0.8", "a b"]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    """A bridge on the shipped bundles plus a broken one, a Live set behind an AbletonOSC
    stand-in (track 1: a clip in slots 0 and 2; track 4 is audio), an output folder."""
    tmp = tmp_path_factory.mktemp("docs")
    old = Path(shutil.copytree(DEFAULT_BUNDLES_DIR / "melody_rnn", tmp / "extra" / "old"))
    weights = (old / "weights.npz").read_bytes()
    (old / "weights.npz").write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))
    store = ModelStore.from_dir([tmp / "extra", DEFAULT_BUNDLES_DIR])
    tracks = [LiveTrack() for _ in range(5)]
    tracks[1].slots[0] = LiveClip(4.0, [(60, 0.0, 0.5, 100.0, False), (62, 1.0, 0.5, 90.0, False),
                                        (64, 2.0, 1.0, 90.0, False)], name="Lead")
    tracks[1].slots[2] = LiveClip(4.0, [(48, 0.0, 1.0, 100.0, False)])
    tracks[4].midi = False
    with FakeAbleton(free_udp_port(), tracks=tracks) as live, \
            running_server(store=store, output_dir=tmp / "out",
                           ableton=AbletonOSC(port=live.port, reply_port=live.reply_port, timeout=2.0)) as server:
        client = Client(server.port)
        try:
            yield client, tmp / "out"
        finally:
            client.close()


@pytest.mark.parametrize("exchange", EXCHANGES, ids=[f"line{e.line}" for e in EXCHANGES])
def test_each_example_exchange_gets_the_replies_the_docs_show(bridge, exchange):
    client, _ = bridge
    for address, args in exchange.sends:
        client.send(address, args, exchange.one_socket)
        time.sleep(0.02)  # in order, as a reader pasting one line after another
    ids = {str(args[0]) for _, args in exchange.sends if args}
    finals = sum(e.address in (P.DONE, P.ERROR) for e in exchange.expects)
    got = client.replies(ids, finals)
    problem = check(exchange.expects, got)
    assert problem is None, f"docs/protocol.md line {exchange.line}: {problem}\nall replies: {got}"
