"""The real server on loopback, driven through the Python client and through raw datagrams.

Fake models (test doubles, here only) stand in for trained bundles: `echo` hands its input
back, `slow` reports progress until cancelled or done, `broken` raises.
"""
import asyncio
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from bridge import protocol as P
from bridge.bundle import Bundle
from fake_bridge import ANY_METER
from bridge.client import AsyncBridgeClient, BridgeClient, BridgeError, Status, _packets
from bridge.clip import Clip, Note, Scale, TimeSignature
from bridge.jobs import STAGES, Job
from bridge.limits import Limits
from bridge.model_store import Loaded, ModelStore
from bridge.params import ParamError
from bridge.server import BridgeServer
from bridge.tools import TOOLS

FINALS = (P.DONE, P.ERROR)
REPO = Path(__file__).resolve().parent.parent


class Echo:
    """Hands clips back unchanged (but renamed), or `variations` copies of a big clip."""

    def continue_clip(self, clip, params, ctx):
        ctx.report(0.5, "echoing")
        return [clip.with_notes(clip.notes, name=clip.name + " echo")]

    def generate(self, clips, params, ctx):
        notes = [Note(i % 128, i / 8, 0.125, 1 + i % 127, i % 2 == 1, 0.5, -3.0, 7) for i in range(1000)]
        return [Clip(notes, 128.0, 90.0, TimeSignature(6, 8), None, f"big {v}") for v in range(params["variations"])]


class Slow:
    """Reports progress every few ms until cancelled, or returns its input after `length` x 0.1 s."""

    def continue_clip(self, clip, params, ctx):
        end = time.monotonic() + params["length"] * 0.1
        while time.monotonic() < end:
            ctx.report(0.5, "thinking")
            time.sleep(0.002)
        return [clip]


class Broken:
    def continue_clip(self, clip, params, ctx):
        raise RuntimeError("model exploded")


def fake_store() -> ModelStore:
    def loaded(name, model, default=False):
        config = {"name": name, "kind": "melody", "tools": ["continue", "generate"], "model_class": "fake",
                  "default": default, **ANY_METER}
        return Loaded(Bundle(Path(name), config, {}), model)

    return ModelStore(loaded=[loaded("echo", Echo(), True), loaded("slow", Slow()), loaded("broken", Broken())],
                      refused={"half": "bundle half: weights.npz is missing"})


CLIP = Clip([Note(60 + i % 24, i * 0.25, 0.5, 1 + i % 127, i % 3 == 0, (i % 4) / 4, i - 50.0, i % 128)
             for i in range(100)], 32.0, 127.5, TimeSignature(7, 8), Scale(2, "dorian"), "Lead 𝄞")


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


@pytest.fixture
def start(loop):
    """Start servers on free loopback ports in the background loop; stop them afterwards."""
    servers = []

    def start(**kwargs):
        server = BridgeServer(port=0, store=kwargs.pop("store", fake_store()), **kwargs)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result()
        servers.append(server)
        return server

    yield start
    for server in servers:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result()


@pytest.fixture
def server(start):
    return start()


@pytest.fixture
def client(server):
    with BridgeClient(port=server.port, timeout=5) as client:
        yield client


class Raw:
    """A bare UDP socket, as SuperCollider or a Max patch would use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local_port = self.sock.getsockname()[1]
        self.skipped = []  # replies until_final passed over

    def send(self, address: str, *args) -> None:
        self.sock.sendto(P.message(address, *args), ("127.0.0.1", self.port))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def recv(self, timeout: float = 3.0):
        self.sock.settimeout(timeout)
        try:
            msg = OscMessage(self.sock.recv(65536))
        except socket.timeout:
            return None
        return msg.address, msg.params

    def until_final(self, rid: str, timeout: float = 3.0) -> list:
        """Replies for rid up to and including its final one."""
        out = []
        while (reply := self.recv(timeout)) is not None:
            if reply[1][:1] != [rid]:
                self.skipped.append(reply)
                continue
            out.append(reply)
            if reply[0] in FINALS:
                return out
        raise AssertionError(f"no final reply for {rid}; got {out}")

    def error(self, rid: str, timeout: float = 3.0) -> tuple[str, str]:
        address, args = self.until_final(rid, timeout)[-1]
        assert address == P.ERROR, args
        return args[1], args[2]

    def quiet(self, seconds: float = 0.15) -> list:
        out = []
        while (reply := self.recv(seconds)) is not None:
            out.append(reply)
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(server):
    raw = Raw(server.port)
    yield raw
    raw.close()


def upload(raw: Raw, rid: str, clips, skip=()) -> None:
    for i, clip in enumerate(clips):
        for n, data in enumerate(P.clip_messages(P.CLIP, P.NOTES, rid, clip, i, len(clips))):
            if (i, n - 1) not in skip:
                raw.send_bytes(data)


def results(replies: list, n_clips: int) -> list[Clip]:
    assembly = P.ClipAssembly(16, 100_000)
    for address, args in replies:
        if address == P.RESULT:
            assembly.add_header(args[1:])
        elif address == P.RESULT_NOTES:
            assembly.add_chunk(args[1:])
    assembly.set_clip_count(n_clips)
    assert assembly.missing() == []
    return assembly.clips()


def test_client_ping_status_models(client):
    client.ping()
    assert client.status() == Status(False, 0, ("echo", "slow", "broken"), 1)
    info = client.models()
    assert [m["name"] for m in info["models"]] == ["echo", "slow", "broken"]
    assert info["models"][0]["tools"] == ["continue", "generate"]
    assert info["refused"] == {"half": "bundle half: weights.npz is missing"}
    assert list(info["tools"]) == list(TOOLS)
    for name, tool in TOOLS.items():
        described = tool.describe()
        assert info["tools"][name]["inputs"] == (tool.min_inputs, tool.max_inputs)
        assert [p["name"] for p in info["tools"][name]["params"]] == [p["name"] for p in described["params"]]
    temperature = next(p for p in info["tools"]["continue"]["params"] if p["name"] == "temperature")
    assert temperature == {"name": "temperature", "type": "float", "min": 0.0, "max": 2.0,
                           "default": 1.0, "choices": [], "help": TOOLS["continue"].params[2].help}
    mode = next(p for p in info["tools"]["continue"]["params"] if p["name"] == "type")
    assert mode["choices"] == ["auto", "melody", "poly", "drums"] and mode["min"] == ""


def test_advertised_ranges_are_exactly_the_accepted_ones(client):
    """Ranges travel as float32: each must survive that exactly, and its ends must be accepted."""
    info = client.models()
    for name, tool in TOOLS.items():
        for param, advertised in zip(tool.params, info["tools"][name]["params"]):
            if param.kind not in ("int", "float"):
                continue
            assert (advertised["min"], advertised["max"]) == (param.min, param.max), (name, param.name)
            if param.kind == "int":
                assert param.coerce(advertised["max"]) == param.max
                with pytest.raises(ParamError):
                    param.coerce(advertised["max"] + 1)
    seed = next(p for p in info["tools"]["generate"]["params"] if p["name"] == "seed")
    assert (seed["min"], seed["max"]) == (0, 2**24 - 1)


def test_every_address_raw_gets_exactly_one_final_reply(server, raw):
    upload(raw, "t1", [CLIP])
    requests = [(P.PING, "p"), (P.STATUS, "s"), (P.MODELS, "m"), (P.CANCEL, "c", "nothing"),
                (P.RESEND, "r", 0, 0), (P.REGISTER, "g", 0), (P.PREFIX + "continue", "t1"),
                (P.PREFIX + "generate", "t2", "variations", 1), (P.PREFIX + "groove", "t3"), (P.PREFIX + "nope", "u")]
    for request in requests:
        raw.send(*request)
    replies = []
    while len([r for r in replies if r[0] in FINALS]) < len(requests):
        reply = raw.recv()
        assert reply is not None, replies
        replies.append(reply)
    replies += raw.quiet()
    finals = {}
    for address, args in replies:
        assert len(P.message(address, *args)) < P.MAX_DATAGRAM
        if address in FINALS:
            finals.setdefault(args[0], []).append((address, args[1:3]))
    assert finals == {
        "p": [(P.DONE, [0])], "s": [(P.DONE, [0])], "m": [(P.DONE, [0])],
        "c": [(P.ERROR, ["unknown_request", "no request nothing is running"])],
        "r": [(P.ERROR, ["unknown_request", "no recent result for request r"])],
        "g": [(P.DONE, [0])], "t1": [(P.DONE, [1])], "t2": [(P.DONE, [1])],
        "t3": [(P.ERROR, ["missing_input", "0:header"])],
        "u": [(P.ERROR, ["unknown_address", finals["u"][0][1][1]])],
    }
    assert ("/bridge/pong", ["p"]) in replies
    assert (P.STATUS, ["s", 0, 0, "echo,slow,broken", 1]) in replies
    assert results([r for r in replies if r[1][0] == "t1"], 1) == [CLIP.with_notes(CLIP.notes, name="Lead 𝄞 echo")]
    assert [r[0] for r in replies if r[1][0] == "t1"][:2] == [P.ACK, P.PROGRESS]


def test_chunked_results_reassemble_exactly(client):
    [out] = client.run("continue", [CLIP])
    assert out == CLIP.with_notes(CLIP.notes, name="Lead 𝄞 echo")
    assert out.notes == CLIP.notes and out.scale == CLIP.scale and out.time_signature == CLIP.time_signature
    big = client.run("generate", variations=3)
    assert [c.name for c in big] == ["big 0", "big 1", "big 2"]
    assert big == Echo().generate([], {"variations": 3}, None)
    # A chunk asked for with a plain request comes back as its values, as on the wire: the
    # client reads result chunks into notes (protocol.parse) but spreads them out again here.
    client.run("generate", variations=1, request_id="again")
    [(address, args)] = client.request(P.RESEND, 0, 1, rid="again")
    sent = Echo().generate([], {"variations": 1}, None)[0].notes[P.CHUNK_NOTES:2 * P.CHUNK_NOTES]
    assert address == P.RESULT_NOTES and args[4:] == [v for note in sent for v in P.note_args(note)]


class Lossy(AsyncBridgeClient):
    """Loses chosen replies once, and chosen uploads once, like a bad Wi-Fi link."""

    def __init__(self, *args, lose_replies=(), lose_uploads=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lose_replies = set(lose_replies)  # (address, clip index, chunk)
        self.lose_uploads = set(lose_uploads)
        self.seen = []

    def _dispatch(self, address, args, notes=None):
        self.seen.append(address)
        key = (address, *args[1:2], *args[2:3]) if address == P.RESULT_NOTES else (address, *args[1:2])
        if key in self.lose_replies:
            self.lose_replies.discard(key)
            return
        super()._dispatch(address, args, notes)

    def send_raw_filter(self, data: bytes) -> bool:
        msg = OscMessage(data)
        key = (msg.address, *msg.params[1:3]) if msg.address == P.NOTES else (msg.address, *msg.params[1:2])
        if key in self.lose_uploads:
            self.lose_uploads.discard(key)
            return False
        return True

    async def open(self):
        await super().open()
        self.loopback = False  # a link that loses datagrams is no loopback: one datagram a message
        transport = self._transports[0]
        original = transport.sendto

        def sendto(data, *addr):
            if self.send_raw_filter(data):
                original(data, *addr)

        transport.sendto = sendto
        return self


class Counting(AsyncBridgeClient):
    """Keeps every datagram it sends."""

    async def open(self):
        await super().open()
        self.sent, transport = [], self._transports[0]
        original = transport.sendto

        def sendto(data, *addr):
            self.sent.append(data)
            original(data, *addr)

        transport.sendto = sendto
        return self


def test_on_loopback_a_request_and_its_uploads_go_as_one_bundle(server):
    """The server reads a request and its uploads from one datagram; too big a bundle, or a
    bridge across a network, gets one datagram a message, each under 1,400 bytes."""
    async def main():
        async with Counting(port=server.port, timeout=5) as client:
            [out] = await client.run("continue", [CLIP])
            return out, client.sent

    out, sent = asyncio.run(main())
    assert out.notes == CLIP.notes and len(sent) == 1 and sent[0].startswith(P.BUNDLE_TAG)
    messages, _ = P.decode_packet(sent[0])
    assert [m.address for m in messages] == [P.CLIP, *[P.NOTES] * 4, P.PREFIX + "continue"]  # 100 notes
    parts = P.clip_messages(P.CLIP, P.NOTES, "1", CLIP, 0, 1)
    assert _packets(parts, loopback=False) == parts and _packets(parts[:1], loopback=True) == parts[:1]
    big = P.clip_messages(P.CLIP, P.NOTES, "1", Clip([Note(60, i / 8, 0.1) for i in range(1500)], 200.0), 0, 1)
    assert _packets(big, loopback=True) == big  # 51 datagrams: more than a bundle takes
    assert all(len(m) < P.MAX_DATAGRAM for m in big)


def test_dropped_result_chunks_and_header_are_recovered_by_resend(server):
    async def main():
        lose = [(P.RESULT_NOTES, 0, 1), (P.RESULT_NOTES, 1, 33), (P.RESULT, 1)]
        async with Lossy(port=server.port, timeout=5, lose_replies=lose) as client:
            clips = await client.run("generate", variations=2)
            return clips, client

    clips, client = asyncio.run(main())
    assert clips == Echo().generate([], {"variations": 2}, None)
    assert client.lose_replies == set() and client.seen.count(P.DONE) >= 3  # the run's done + resends


def test_dropped_uploads_are_resent_on_missing_input(server):
    async def main():
        lose = [(P.NOTES, 0, 2), (P.CLIP, 0)]
        async with Lossy(port=server.port, timeout=5, lose_uploads=lose) as client:
            return await client.run("continue", [CLIP]), client

    [out], client = asyncio.run(main())
    assert out.notes == CLIP.notes and client.lose_uploads == set()
    assert client.seen.count(P.ERROR) == 2  # header missing first, then the chunk


def test_resend_raw_and_result_cache(raw):
    raw.send(P.PREFIX + "generate", "g", "variations", 1)
    assert raw.until_final("g")[-1] == (P.DONE, ["g", 1])
    raw.send(P.RESEND, "g", 0, 5)
    assert [a for a, _ in raw.until_final("g")] == [P.RESULT_NOTES, P.DONE]
    raw.send(P.RESEND, "g", 0, -1)
    assert [a for a, _ in raw.until_final("g")] == [P.RESULT, P.DONE]
    raw.send(P.RESEND, "g", 0, 99)
    assert raw.error("g")[0] == "bad_request"
    raw.send(P.RESEND, "g", 3, 0)
    assert raw.error("g")[0] == "bad_request"


def test_reply_port_routing(server):
    with BridgeClient(port=server.port, reply_port=0, timeout=5) as client:
        assert client.reply_port not in (None, 0, client.local_port)
        client.ping()
        assert client.run("continue", [CLIP])[0].notes == CLIP.notes
    raw, listener = Raw(server.port), Raw(server.port)
    raw.send(P.PING, "x", "reply_port", listener.local_port)
    assert listener.until_final("x") == [(P.PONG, ["x"]), (P.DONE, ["x", 0])]
    assert raw.quiet() == []
    raw.send(P.PING, "y", "reply_port", 70000)
    assert raw.error("y")[0] == "bad_param"


def test_registered_port_routing_and_status_push(start):
    server = start(queue_size=2)
    raw, touchosc = Raw(server.port), Raw(server.port)
    raw.send(P.REGISTER, "reg", touchosc.local_port)
    assert touchosc.until_final("reg") == [(P.DONE, ["reg", 0])]
    raw.send(P.PING, "p")
    assert touchosc.until_final("p")[0] == (P.PONG, ["p"])
    upload(raw, "slow", [CLIP])
    raw.send(P.PREFIX + "continue", "slow", "bundle", "slow", "length", 2)
    replies = touchosc.until_final("slow")
    assert replies[-1] == (P.DONE, ["slow", 1])
    pushes = [args for address, args in touchosc.skipped + touchosc.quiet() if address == P.STATUS]
    assert pushes == [["", 1, 1, "echo,slow,broken", 1], ["", 0, 0, "echo,slow,broken", 1]], touchosc.skipped
    assert raw.quiet() == []  # nothing went to the sending port
    raw.send(P.REGISTER, "off", 0)
    assert raw.until_final("off") == [(P.DONE, ["off", 0])]
    raw.send(P.REGISTER, "bad", "x")
    assert raw.error("bad")[0] == "bad_param"


def test_reply_to_source_with_python_osc_client(server):
    sc = SimpleUDPClient("127.0.0.1", server.port)  # infers types, as sclang does
    sc.send_message(P.PING, [42])
    replies = [OscMessage(sc.receive(3)) for _ in range(2)]
    assert [(m.address, m.params) for m in replies] == [(P.PONG, ["42"]), (P.DONE, ["42", 0])]
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(OscMessageBuilder(P.PING).build())  # no id: bad_request
    sc.send(bundle.build())
    error = OscMessage(sc.receive(3))
    assert error.address == P.ERROR and error.params[:2] == ["", "bad_request"]


def tcp_frames(sock: socket.socket, rid: str) -> list:
    decoder, out = P.SlipDecoder(), []
    while True:
        data = sock.recv(65536)
        assert data, out
        for frame in decoder.feed(data):
            msg = OscMessage(frame)
            out.append((msg.address, msg.params))
            if msg.address in FINALS and msg.params[0] == rid:
                return out


def test_tcp_slip_round_trip(start):
    server = start(tcp_port=0)
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=5) as sock:
        sock.sendall(P.slip_encode(P.message(P.PING, "p")))
        assert tcp_frames(sock, "p") == [(P.PONG, ["p"]), (P.DONE, ["p", 0])]
        stream = b"".join(P.slip_encode(m) for m in P.clip_messages(P.CLIP, P.NOTES, "t", CLIP, 0, 1))
        stream += P.slip_encode(P.message(P.PREFIX + "continue", "t", "reply_port", 9))  # ignored on TCP
        for i in range(0, len(stream), 500):  # frames split across reads
            sock.sendall(stream[i:i + 500])
        replies = tcp_frames(sock, "t")
        assert replies[-1] == (P.DONE, ["t", 1]) and results(replies, 1)[0].notes == CLIP.notes
        sock.sendall(P.slip_encode(P.message(P.REGISTER, "r", 9000)))
        assert tcp_frames(sock, "r")[-1][1][1] == "bad_request"
        sock.sendall(bytes([P.ESC, 0x00, P.END]))  # broken framing closes only this connection
        assert sock.recv(10) == b""
    Raw(server.port).send(P.PING, "alive")


def test_busy_status_and_queued_cancel(start):
    server = start(queue_size=1)
    raw = Raw(server.port)
    for rid in ("a", "b", "c"):
        upload(raw, rid, [CLIP])
    raw.send(P.PREFIX + "continue", "a", "bundle", "slow", "length", 32)
    assert [raw.recv()[0] for _ in range(2)] == [P.ACK, P.PROGRESS]  # a is running
    raw.send(P.PREFIX + "continue", "b", "bundle", "slow", "length", 32)
    assert raw.recv() == (P.ACK, ["b"])
    raw.send(P.PREFIX + "continue", "c", "bundle", "slow")
    code, text = raw.error("c")
    assert code == "busy" and "try again" in text
    raw.send(P.STATUS, "s")
    assert (P.STATUS, ["s", 1, 1, "echo,slow,broken", 1]) in raw.until_final("s")
    raw.send(P.CANCEL, "x", "b")  # queued: answered at once
    assert raw.until_final("x") == [(P.DONE, ["x", 0])]
    assert (P.ERROR, ["b", "cancelled", "cancelled by request x"]) in raw.skipped
    raw.send(P.PREFIX + "continue", "a", "bundle", "slow")  # "a" is taken: answered under id "", not "a"
    assert raw.error("") == ("duplicate_id", "request a is still running; use a new id")
    raw.send(P.CANCEL, "y", "a")
    assert raw.error("a")[0] == "cancelled"
    raw.send(P.PING, "alive")
    assert raw.until_final("alive")[-1] == (P.DONE, ["alive", 0])


def test_cancel_through_async_client(server):
    async def main():
        async with AsyncBridgeClient(port=server.port, timeout=5) as client:
            started = asyncio.Event()
            job = asyncio.create_task(client.run("continue", [CLIP], request_id="job", bundle="slow", length=32,
                                                 progress=lambda f, m: started.set()))
            await asyncio.wait_for(started.wait(), 5)
            await client.cancel("job")
            with pytest.raises(BridgeError) as info:
                await job
            with pytest.raises(BridgeError, match="unknown_request"):
                await client.cancel("job")
            await client.ping()
            return info.value

    error = asyncio.run(main())
    assert error.code == "cancelled"


def test_timeout_and_progress_rate_limit(client, raw):
    fractions = []
    t0 = time.monotonic()
    with pytest.raises(BridgeError) as info:
        client.run("continue", [CLIP], bundle="slow", length=32, timeout=0.5,
                   progress=lambda f, m: fractions.append((f, m)))
    assert info.value.code == "timeout" and "0.5 s" in info.value.message
    assert time.monotonic() - t0 < 2.0
    assert 2 <= len(fractions) <= 8 and fractions[0] == (0.5, "thinking")  # ~10/s, not one per 2 ms
    client.ping()
    upload(raw, "z", [CLIP])
    raw.send(P.PREFIX + "continue", "z", "timeout", -1)
    assert raw.error("z")[0] == "bad_param"


def test_tool_errors_map_to_codes(start, caplog):
    server = start(store=ModelStore())
    with BridgeClient(port=server.port, timeout=5) as client:
        with pytest.raises(BridgeError, match="model_not_installed"):
            client.run("continue", [CLIP])
        with pytest.raises(BridgeError, match="bad_input: generate takes 0-1 input clip"):
            client.run("generate", [CLIP, CLIP])
        with pytest.raises(BridgeError, match="bad_input: interpolate takes 2 input clip"):
            client.run("interpolate", [CLIP, CLIP, CLIP])
        most = max(tool.max_inputs for tool in TOOLS.values())  # more than any tool takes: refused on upload
        with pytest.raises(BridgeError, match=f"bad_clip: clip count must be 1-{most}, got {most + 1}"):
            client.run("interpolate", [CLIP] * (most + 1))
    with BridgeClient(port=start().port, timeout=5) as client:
        caplog.set_level(logging.ERROR, logger="bridge.server")
        with pytest.raises(BridgeError) as info:
            client.run("continue", [CLIP], bundle="broken")
        assert (info.value.code, info.value.message) == ("internal", "model exploded")
        assert any(r.exc_info and "model exploded" in str(r.exc_info[1]) for r in caplog.records)
        with pytest.raises(BridgeError, match="bad_param: unknown parameter 'colour'"):
            client.run("continue", [CLIP], colour=1)
        with pytest.raises(BridgeError, match="bad_param: temperature must be 0-2"):
            client.run("continue", [CLIP], temperature=float("nan"))
        assert client.run("continue", [CLIP], type=0.0, variations=2.6)[0].notes == CLIP.notes  # TouchOSC floats


BAD = [
    ((P.PING, 1.5), "", "bad_request"),
    ((P.PING, "x" * 65), "", "bad_request"),
    ((P.CANCEL, "c"), "c", "bad_request"),
    ((P.PING, "e", "extra"), "e", "bad_request"),
    ((P.PING, "k", "colour", 1), "k", "bad_param"),
    ((P.STATUS, "t", 5, 5), "t", "bad_request"),
    ((P.PREFIX + "nope", "n"), "n", "unknown_address"),
    ((P.PREFIX + "generate", "v", "variations", 1e9), "v", "bad_param"),
    ((P.PREFIX + "generate", "w", "seed", -5), "w", "bad_param"),
    ((P.PREFIX + "generate", "i", "temperature", float("inf")), "i", "bad_param"),
    ((P.PREFIX + "generate", "r", "reply_port", "x"), "r", "bad_param"),
    ((P.PREFIX + "generate", "x", "window", 0), "x", "bad_param"),
    ((P.PREFIX + "generate", "y", "window", "big"), "y", "bad_param"),
    ((P.RESEND, "q", "a", "b"), "q", "unknown_request"),
]


@pytest.mark.parametrize("request_, rid, code", BAD)
def test_bad_requests_get_clear_errors(raw, request_, rid, code):
    raw.send(*request_)
    assert raw.error(rid)[0] == code
    assert raw.quiet(0.05) == []
    raw.send(P.PING, "alive")
    assert raw.until_final("alive")[-1] == (P.DONE, ["alive", 0])


BAD_UPLOADS = [
    ([(P.CLIP, "u", 0, 1, 100_000, 3334, 4.0, 120.0, 4, 4, "x")], "note count must be 0-10000"),
    ([(P.CLIP, "u", 0, 1, -1, 0, 4.0, 120.0, 4, 4, "x")], "note count"),
    ([(P.CLIP, "u", 0, 1, 1, 1, float("nan"), 120.0, 4, 4, "x"), (P.NOTES, "u", 0, 0, 1, *[60, 0.0, 1.0, 100, 0, 1.0, 0.0, 64])],
     "length must be a finite number, got nan"),
    ([(P.CLIP, "u", 0, 1, 1, 1, 4.0, 120.0, 4, 4, "x"), (P.NOTES, "u", 0, 0, 1, *[60, float("inf"), 1.0, 100, 0, 1.0, 0.0, 64])],
     "note times must be within 65536 beats"),
    ([(P.CLIP, "u", 0, 1, 1, 1, 4.0, 120.0, 4, 4, "x"), (P.NOTES, "u", 0, 0, 1, *[60, float("nan"), 1.0, 100, 0, 1.0, 0.0, 64])],
     "note 0: start must be a finite number"),
    ([(P.CLIP, "u", 0, 1, 1, 1, 4.0, 120.0, 4, 4, "x"), (P.NOTES, "u", 0, 0, 1, *[200, 0.0, 1.0, 100, 0, 1.0, 0.0, 64])],
     "note 0: pitch must be an integer 0-127"),
    ([(P.CLIP, "u", 0, 1, 1, 1, 4.0, 120.0, 4, 4, "x"), (P.NOTES, "u", 0, 0, 1, 60, 0.0)], "groups of 8"),
    ([(P.CLIP, "u", 0, 1, 1, 1, 4.0, 5000.0, 4, 4, "x"), (P.NOTES, "u", 0, 0, 1, *[60, 0.0, 1.0, 100, 0, 1.0, 0.0, 64])],
     "tempo must be 1-999"),
    ([(P.NOTES, "u")], "starts with"),
    ([(P.CLIP, "u", "zero")], "takes 9 values"),
]


@pytest.mark.parametrize("messages, fragment", BAD_UPLOADS)
def test_bad_uploads_poison_the_request(raw, messages, fragment):
    for message in messages:
        raw.send(*message)
    raw.send(P.PREFIX + "continue", "u")
    code, text = raw.error("u")
    assert code == "bad_clip" and fragment in text
    raw.send(P.PREFIX + "continue", "u")  # the poisoned upload is gone
    assert raw.error("u") == ("missing_input", "0:header")


def test_hundred_thousand_notes_over_tcp_are_refused_without_holding_them(start):
    server = start(tcp_port=0)
    big = Clip([Note(60, i / 4, 0.25) for i in range(100_000)], 25_000.0)
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=20) as sock:
        messages = P.clip_messages(P.CLIP, P.NOTES, "big", big, 0, 1)
        sock.sendall(b"".join(P.slip_encode(m) for m in messages[1:]))  # chunks, no header
        sock.sendall(P.slip_encode(P.message(P.PREFIX + "continue", "big")))
        address, args = tcp_frames(sock, "big")[-1]
        assert args[1] == "bad_clip" and "more than the 10000 announced" in args[2]
        assert server.uploads.notes <= 10_000
        sock.sendall(P.slip_encode(messages[0]) + P.slip_encode(P.message(P.PREFIX + "continue", "big")))
        assert tcp_frames(sock, "big")[-1][1][1:] == ["bad_clip", "note count must be 0-10000, got 100000"]


def test_notes_beyond_the_cap_are_refused_over_udp(start):
    server = start(max_notes=1000)
    raw = Raw(server.port)
    note = [60, 0.0, 1.0, 100, 0, 1.0, 0.0, 64]
    for chunk in range(40):  # 40 x 30 = 1200 notes, no header, arriving at the cap
        raw.send(P.NOTES, "h", 0, chunk, 3334, *note * 30)
    raw.send(P.PREFIX + "continue", "h")
    code, text = raw.error("h")
    assert code == "bad_clip" and "more than the 1000 announced" in text
    raw.send(P.NOTES, "", 0, 0, 1, *note)
    assert raw.error("") == ("bad_request", "/bridge/notes: the first argument must be a non-empty request id (string or int)")
    assert server.uploads.notes <= 1000


def test_undecodable_and_foreign_datagrams_are_dropped_with_a_log_line(start, caplog):
    caplog.set_level(logging.INFO, logger="bridge.server")
    server = start(allow=["10.1.2.3"])
    raw = Raw(server.port)
    raw.send(P.PING, "x")
    assert raw.quiet(0.2) == []
    open_server = start()
    raw = Raw(open_server.port)
    for data in (b"\xff\x00garbage", b"/bridge/ping\0\0\0\0,s\0\0\xff\xfe\0\0", b"", b"#bundle\0" + b"\x01" * 5,
                 P.message("/live/test"), P.message(P.DONE, "x", 0)):
        raw.send_bytes(data)
    assert raw.quiet(0.2) == []
    raw.send(P.PING, "alive")
    assert raw.until_final("alive")[-1] == (P.DONE, ["alive", 0])
    open_server.quiet.flush()  # what `stop` does: the lines left out are counted
    text = caplog.text
    assert "not in the allow list" in text and text.count("dropped undecodable packet") == 1
    assert "dropped /live/test" in text and "dropped /bridge/done" not in text
    assert "3 more undecodable line(s) left out" in text and "1 more foreign line(s) left out" in text


ADDRESSES = [P.PING, P.STATUS, P.MODELS, P.CANCEL, P.RESEND, P.REGISTER, P.CLIP, P.NOTES,
             *(P.PREFIX + name for name in TOOLS)]
TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=12)
ARG = st.one_of(st.integers(-(2**31), 2**31 - 1), st.floats(width=32), TEXT, st.booleans(),
                st.none(), st.binary(min_size=1, max_size=8),
                st.sampled_from(["1", "variations", "timeout", "reply_port", "bundle", "slow", "temperature"]))


def build(address: str, args: list) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)  # let python-osc infer T/F/N/b too: a fuzzer should send anything
    return builder.build().dgram


def test_fuzz_random_bytes_and_args_never_break_the_server(start, caplog):
    caplog.set_level(logging.WARNING, logger="bridge.server")
    server = start(default_timeout=2.0)
    raw = Raw(server.port)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=300),
                     st.builds(build, st.sampled_from(ADDRESSES), st.lists(ARG, max_size=14))))
    def check(packet):
        raw.send_bytes(packet)

    check()
    raw.quiet(0.3)
    raw.send(P.PING, "alive")
    assert raw.until_final("alive", timeout=5)[-1] == (P.DONE, ["alive", 0])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_importing_the_server_loads_no_tensorflow():
    code = "import sys, bridge.serving, bridge.client; sys.exit(any(m.startswith('tensorflow') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_serve_prints_where_it_listens_and_stops_on_sigterm(tmp_path):
    code = f"from bridge.serving import serve; serve(port=0, bundles_dir={str(tmp_path)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("magenta-bridge listening on udp 127.0.0.1:") and "WARNING" not in first
        assert "none (tool requests answer model_not_installed)" in second
        port = int(first.strip().rsplit(":", 1)[1])
        raw = Raw(port)
        raw.send(P.PREFIX + "generate", "g")
        assert raw.error("g")[0] == "model_not_installed"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_notices_come_before_done_and_reach_the_client(start):
    """What a tool notices about its result (ToolContext.notice) goes out as /bridge/notice
    before the final reply, so Max, TouchOSC and Python clients can show it."""
    class Noticing:
        def continue_clip(self, clip, params, ctx):
            ctx.notice("the melody model heard the top note of each chord")
            return [clip]

    store = ModelStore(loaded=[Loaded(Bundle(Path("n"), {"name": "n", "kind": "melody", "tools": ["continue"],
                                                         "model_class": "fake", **ANY_METER}, {}), Noticing())])
    server = start(store=store)
    heard = []
    with BridgeClient(port=server.port, timeout=5) as client:
        client.run("continue", [CLIP], notice=heard.append)
    assert heard == ["the melody model heard the top note of each chord"]
    raw = Raw(server.port)
    upload(raw, "n1", [CLIP])
    raw.send(P.PREFIX + "continue", "n1")
    addresses = [a for a, _ in raw.until_final("n1")]
    raw.close()
    assert addresses.index(P.NOTICE) == len(addresses) - 2 and addresses[-1] == P.DONE


@pytest.mark.parametrize("udp", [True, False], ids=["udp, from the worker thread", "tcp, from the loop"])
def test_results_go_out_in_one_window_then_in_paced_bursts(udp, monkeypatch):
    """A result of up to WINDOW datagrams (Generate's and Continue's at their defaults) goes out
    without a pause; a bigger one pauses after the window and after every BURST datagrams
    that follow, never after the last, so a client with a default receive buffer keeps up.
    A UDP result and its `done` are sent by the worker thread that ran the tool (the loop is
    not woken first); a TCP one by the loop, which owns the connection."""
    from bridge import worker
    from bridge.ableton import AbletonOSC
    from bridge.jobs import Job
    from bridge.results import Results
    from bridge.transport import BURST, WINDOW
    from bridge.worker import Runner

    def stream(variations: int) -> tuple[list[bytes], list[int]]:
        sent, pauses, finals, threads = [], [], [], set()
        loop_thread = []

        def send(data: bytes) -> None:
            sent.append(data)
            threads.add(threading.get_ident())

        def pause(seconds: float = 0.0) -> None:
            pauses.append(sum(not m.startswith(P.PROGRESS.encode()) for m in sent))

        async def drain() -> None:
            pause()

        def finish(job, reply):
            finals.append(reply)
            threads.add(threading.get_ident())

        async def go() -> None:
            loop_thread.append(threading.get_ident())
            runner = Runner(fake_store(), Limits(), AbletonOSC(), Results(4), REPO, finish, 1)
            job = Job(("udp", "127.0.0.1", 1), "r1", TOOLS["generate"], [], {"variations": variations, "bundle": "echo"},
                      send, 10.0, drain=drain, udp=udp)
            job.deadline = time.monotonic() + 10
            await runner.run(job)
            runner.stop()

        monkeypatch.setattr(worker.time, "sleep", pause)
        asyncio.run(go())
        monkeypatch.undo()
        assert finals and finals[0].startswith(P.DONE.encode())
        assert (loop_thread[0] in threads) != udp and len(threads) == 1
        return [m for m in sent if not m.startswith(P.PROGRESS.encode())], pauses

    one, pauses = stream(1)  # a 1,000-note clip: a header and 34 chunks
    assert len(one) == 35 and pauses == [WINDOW]
    three, pauses = stream(3)
    assert pauses == list(range(WINDOW, len(three), BURST)) and pauses[-1] < len(three)
    assert not set(pauses) & {0, len(three)}


def test_a_client_window_sets_how_much_goes_out_before_the_first_pause(start, monkeypatch):
    """The Python client on loopback tells the server, as `window`, how many result datagrams its
    receive buffer holds (a page each, the most one can take of it); the server sends that many
    before its first pause, then paces as for every client. A window past `max_window` is capped."""
    from bridge import worker
    from bridge.transport import BURST, WINDOW

    pauses: list[int] = []  # datagrams sent before each pause
    real_replies = worker._replies

    def replies(*args):
        sent = 0
        for data in real_replies(*args):
            if data is None:
                pauses.append(sent)
            else:
                sent += 1
            yield data

    monkeypatch.setattr(worker, "_replies", replies)
    # A 1,000-note clip is a header and 34 chunks: 35 datagrams a variation.
    for limits, window, variations, expected in [
            (Limits(), 7, 1, [7, 7 + BURST]), (Limits(), 200, 3, []), (Limits(), 10**6, 2, []),
            (Limits(max_window=40), 10**6, 2, [40, 40 + BURST]), (Limits(max_window=40), None, 2, [40, 40 + BURST])]:
        with BridgeClient(port=start(limits=limits).port, timeout=5) as client:
            sock = client.aio._transports[0].get_extra_info("socket")
            assert client.aio.window == sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 4096 > 0
            if window is not None:  # what a smaller (or larger) buffer would announce
                client.aio.window = window
            pauses.clear()
            clips = client.run("generate", variations=variations, bundle="echo")
            assert [len(c.notes) for c in clips] == [1000] * variations
            assert pauses == expected, (window, pauses)
    # Across a network (a documentation address here: nothing is sent) no window is announced.
    with BridgeClient(host="192.0.2.1", port=9, timeout=5) as far:
        assert far.aio.window == 0
    # Over TCP the window is not used: 16 x 35 frames (780 KB) would pass unsent_bytes unread.
    server = start(tcp_port=0)
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=10) as sock:
        pauses.clear()
        sock.sendall(P.slip_encode(P.message(P.PREFIX + "generate", "t", "variations", 16, "bundle", "echo",
                                             "window", 1024)))
        assert tcp_frames(sock, "t")[-1] == (P.DONE, ["t", 16])
        assert pauses == list(range(WINDOW, 16 * 35, BURST))


def test_a_result_going_out_is_not_cancelled_and_a_cancelled_job_sends_no_result(loop):
    """The worker thread claims delivery and the loop claims a cancel or timeout under the
    job's lock: whichever comes first wins, and exactly one final reply goes out."""
    from bridge.jobs import Job, Jobs

    async def run() -> None:
        pass

    def job(rid: str, sent: list) -> Job:
        return Job(("udp", "127.0.0.1", 1), rid, TOOLS["continue"], [], {}, sent.append, 10.0, udp=True)

    async def go() -> None:
        jobs = Jobs(4, run)
        jobs.start(0)
        sent: list[bytes] = []
        delivering = job("a", sent)
        jobs.submit(delivering)
        assert delivering.start_delivery()
        jobs.cancel(delivering, b"cancelled")
        jobs.expire(delivering)
        assert sent == [] and not delivering.finished and delivering.key in jobs
        done = threading.Thread(target=jobs.finish, args=(delivering, b"done"))  # from the worker thread
        done.start()
        done.join()
        assert sent == [b"done"] and not jobs.finish(delivering, b"again") and sent == [b"done"]
        assert delivering.key not in jobs  # its id is free at once, before the loop retires it
        await asyncio.sleep(0)
        assert len(jobs) == 0

        cancelled = job("b", sent)
        jobs.submit(cancelled)
        jobs.cancel(cancelled, b"cancelled")
        assert cancelled.cancel.is_set() and not cancelled.start_delivery()
        assert sent == [b"done", b"cancelled"]
        await jobs.stop()

    asyncio.run_coroutine_threadsafe(go(), loop).result(5)


def test_an_exception_in_the_progress_callback_reaches_the_caller(client):
    """Replies are taken in the datagram callback; what the caller's callback raises there must
    come out of run(), not vanish into the event loop."""
    class Stop(Exception):
        pass

    def progress(fraction, text):
        raise Stop(text)

    with pytest.raises(Stop, match="echoing"):
        client.run("continue", [CLIP], bundle="echo", progress=progress)
    assert client.run("continue", [CLIP], bundle="echo")[0].name == CLIP.name + " echo"  # the client still works


def test_each_request_logs_its_tool_time_at_debug(client, caplog):
    """bench/bench_server.py pairs each round trip with this line (the tool's own time in the
    server process), so its shape is part of what the benchmark reads."""
    import re

    with caplog.at_level(logging.DEBUG, logger="bridge.worker"):
        client.run("continue", [CLIP], bundle="echo", request_id="timed-1")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not any("timed-1" in r.getMessage() for r in caplog.records):
            time.sleep(0.01)
    line = next(r.getMessage() for r in caplog.records if "timed-1" in r.getMessage())
    found = re.search(r"request (\S+) \S+: tool ([0-9.]+) ms, queued to done ([0-9.]+) ms, \d+ clip\(s\); "
                      r"stages ms: (.*)$", line)
    assert found and found.group(1) == "timed-1" and 0 <= float(found.group(2)) <= float(found.group(3))
    stages = [part.rsplit(" ", 1) for part in found.group(4).split(", ")]
    assert [name for name, _ in stages] == [name for name, _, _ in STAGES if name != "tool"]
    assert all(float(ms) >= 0 for _, ms in stages)


def test_a_job_names_the_time_between_its_stamps_and_skips_stages_it_never_reached():
    job = Job(("udp", "127.0.0.1", 1), "r", TOOLS["continue"], [], {}, lambda data: None, 5.0,
              stages={"received": 1.0, "acked": 1.0002, "started": 1.0005, "ran": 1.0105})
    assert {name: round(ms, 3) for name, ms in job.stage_ms().items()} == {
        "handle": 0.2, "to worker": 0.3, "tool": 10.0}
    assert job.end() and "done" in job.stages  # but no "checked": neither check nor send is named
    assert list(job.stage_ms()) == ["handle", "to worker", "tool"]


def test_a_draining_receiver_reads_what_waits_in_one_callback():
    """The client reads every datagram already waiting when one arrives (up to `drain` more),
    not one per event-loop pass: a 35-datagram result cost 14 us a datagram in loop passes."""
    from bridge.quiet_log import QuietLog
    from bridge.udp import OscReceiver

    async def go() -> list[tuple[int, str]]:
        handled: list[tuple[int, str]] = []
        calls = [0]
        receiver = OscReceiver(lambda messages, skipped, addr: handled.append((calls[0], messages[0].params[0])),
                               QuietLog(logging.getLogger("test")), drain=3)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: receiver, local_addr=("127.0.0.1", 0))
        first = receiver.datagram_received
        receiver.datagram_received = lambda data, addr: (calls.__setitem__(0, calls[0] + 1), first(data, addr))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for n in range(6):
            sender.sendto(P.message(P.DONE, str(n), 0), transport.get_extra_info("sockname"))
        deadline = time.monotonic() + 2
        while len(handled) < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        transport.close()
        sender.close()
        return handled

    handled = asyncio.run(go())
    assert [rid for _, rid in handled] == [str(n) for n in range(6)]  # in order, none lost
    assert [call for call, _ in handled] == [1, 1, 1, 1, 2, 2]  # the first callback took 1 + 3


def test_results_racing_cancels_and_deadlines_end_each_request_once(server):
    """A result is sent from the worker thread while cancels and deadlines are handled on the
    loop: every request still gets exactly one final reply, and nothing of it comes after."""
    raw = Raw(server.port)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)  # read at the end: hold every reply
    small = Clip(CLIP.notes[:8], 4.0)
    rids = [f"r{n}" for n in range(60)]
    for n, rid in enumerate(rids):
        upload(raw, rid, [small])
        extra = ("timeout", 0.002) if n % 3 == 2 else ()
        raw.send(P.PREFIX + "continue", rid, "bundle", "echo", *extra)
        if n % 3 == 1:
            raw.send(P.CANCEL, f"c{n}", rid)
        if n % 6 == 5:
            time.sleep(0.01)  # let the queue drain now and then
    replies = raw.quiet(1.0)
    raw.close()
    for rid in rids:
        mine = [address for address, args in replies if args[:1] == [rid]]
        finals = [i for i, address in enumerate(mine) if address in FINALS]
        assert len(finals) == 1 and finals[0] == len(mine) - 1, (rid, mine)
        if mine[-1] == P.DONE:
            assert P.RESULT in mine
        else:
            assert P.RESULT not in mine and P.RESULT_NOTES not in mine
    outcomes = {address for address, args in replies if args[:1] in ([rid] for rid in rids) and address in FINALS}
    assert outcomes == {P.DONE, P.ERROR}  # both sides of the race were exercised


def test_a_cancel_during_delivery_lets_the_result_finish(server):
    """A result of 210 datagrams goes out in paced bursts from the worker thread (11 pauses: a
    cancel sent on its first datagram arrives well inside it); the cancel must not cut it: the
    request still ends with its whole result and `done`."""
    raw = Raw(server.port)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    raw.send(P.PREFIX + "generate", "big", "bundle", "echo", "variations", 6)
    while (reply := raw.recv()) is not None and reply[0] != P.RESULT:
        pass
    raw.send(P.CANCEL, "stop", "big")
    replies = [reply]
    while (reply := raw.recv()) is not None:
        replies.append(reply)
        if reply[0] in FINALS and reply[1][0] == "big":
            break
    mine = [r for r in replies if r[1][0] == "big"]
    assert mine[-1] == (P.DONE, ["big", 6]) and len(results(mine, 6)) == 6
    assert [r for r in raw.quiet() + replies if r[1][0] == "stop"] == [(P.DONE, ["stop", 0])]
    raw.close()


class Faulty:
    """Makes three clips of 40 notes (two chunks each); the last holds a note no bridge may
    send, as a model that produced a NaN would."""

    def generate(self, clips, params, ctx):
        good = [Note(60 + i % 12, i * 0.5, 0.5) for i in range(40)]
        bad = [*good[:5], Note(64, float("nan"), 0.5), *good[6:]]
        return [Clip(good, 32.0, name="one"), Clip(good, 32.0, name="two"), Clip(bad, 32.0, name="three")]


def faulty_server(start, **kwargs) -> BridgeServer:
    config = {"name": "faulty", "kind": "melody", "tools": ["generate"], "model_class": "fake", "default": True,
              **ANY_METER}
    return start(store=ModelStore(loaded=[Loaded(Bundle(Path("faulty"), config, {}), Faulty())]), **kwargs)


def test_a_refused_result_note_ends_the_request_in_error_after_whole_clips_only(start, tmp_path):
    """A result's notes are checked clip by clip as the clips go out (bridge.worker): the clips
    before the bad one arrive whole, then `error`, never `done`, and nothing is kept for
    resend. A result to be saved is checked whole first, so nothing of it goes out or to disk."""
    server = faulty_server(start, output_dir=tmp_path)
    raw = Raw(server.port)
    try:
        raw.send(P.PREFIX + "generate", "f")
        replies = raw.until_final("f")
        assert replies[-1] == (P.ERROR, ["f", "bad_clip", "note 5: start must be a finite number, got nan"])
        sent = [(address, args[1:3]) for address, args in replies if address in (P.RESULT, P.RESULT_NOTES)]
        assert sent == [(P.RESULT, [0, 3]), (P.RESULT_NOTES, [0, 0]), (P.RESULT_NOTES, [0, 1]),
                        (P.RESULT, [1, 3]), (P.RESULT_NOTES, [1, 0]), (P.RESULT_NOTES, [1, 1])]
        raw.send(P.RESEND, "f", 0, 0)
        assert raw.error("f")[0] == "unknown_request"

        raw.send(P.PREFIX + "generate", "s", "save", "takes/faulty.mid")
        replies = raw.until_final("s")
        assert replies[-1][0] == P.ERROR and "note 5" in replies[-1][1][2]
        assert not [address for address, _ in replies if address in (P.RESULT, P.RESULT_NOTES)]
        assert not list(tmp_path.rglob("*.mid"))
    finally:
        raw.close()
    with BridgeClient(port=server.port, timeout=5) as client:
        with pytest.raises(BridgeError, match="bad_clip: note 5: start must be a finite number"):
            client.run("generate")
        client.ping()  # and the server answers on
    tcp = faulty_server(start, tcp_port=0)  # the loop sends a TCP result: the same order
    with socket.create_connection(("127.0.0.1", tcp.tcp_port), timeout=5) as sock:
        sock.sendall(P.slip_encode(P.message(P.PREFIX + "generate", "t")))
        frames = tcp_frames(sock, "t")
    assert [(address, args[1:3]) for address, args in frames if address in (P.RESULT, P.RESULT_NOTES)] == sent
    assert frames[-1][0] == P.ERROR


def test_a_result_clip_over_the_note_limit_is_refused_before_any_of_it_goes_out(start):
    """Note counts are checked for every clip before the first datagram: only a note's value
    can stop a result part way (the test above)."""
    raw = Raw(faulty_server(start, max_notes=30).port)
    try:
        raw.send(P.PREFIX + "generate", "n")
        replies = raw.until_final("n")
    finally:
        raw.close()
    assert replies[-1] == (P.ERROR, ["n", "bad_clip", "clip has 40 notes, more than the limit of 30"])
    assert not [address for address, _ in replies if address in (P.RESULT, P.RESULT_NOTES)]
