"""Who may talk to the bridge and where it may write (issue #9).

Loopback by default with a warning when bound wider, an allow list that drops everyone else,
and `save` names confined to the output folder. Nothing here binds a public address: the
warning is decided by `exposure_warning`, which `serve` prints.
"""
import os
import socket
from pathlib import Path

import pytest

from bridge import protocol as P
from bridge.cli import build_parser
from bridge.midi_io import DRUM_CHANNEL, read_midi, read_midi_tracks
from bridge.params import ParamError
from bridge.saving import confine_path
from bridge.server import BridgeServer
from bridge.serving import exposure_warning
from test_reliability import quick_store
from test_server import CLIP, Raw, loop, start, upload  # noqa: F401  (fixtures used by name)


def test_binds_loopback_by_default(start):
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert BridgeServer(store=quick_store()).host == "127.0.0.1"
    running = start()
    assert running.udp.transport.get_extra_info("sockname")[0] == "127.0.0.1"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_no_warning_on_loopback(host):
    assert exposure_warning(host) is None
    assert exposure_warning(host, ["10.0.0.5"]) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "bridge.example.org"])
def test_warning_when_bound_wider(host):
    warning = exposure_warning(host)
    assert warning.startswith(f"WARNING: listening on {host}, not loopback") and "--allow" in warning
    narrowed = exposure_warning(host, ["192.168.1.30"])
    assert narrowed.startswith("WARNING") and "only 192.168.1.30 will be answered" in narrowed


def test_allow_list_drops_other_clients_over_udp_and_tcp(start):
    allowed = start(allow=["127.0.0.1"], tcp_port=0)
    raw = Raw(allowed.port)
    raw.send(P.PING, "in")
    assert raw.until_final("in")[-1] == (P.DONE, ["in", 0])
    locked = start(allow=["10.9.8.7"], tcp_port=0)
    raw = Raw(locked.port)
    raw.send(P.PING, "out")
    assert raw.quiet(0.3) == []
    with socket.create_connection(("127.0.0.1", locked.tcp_port), timeout=5) as sock:
        sock.sendall(P.slip_encode(P.message(P.PING, "out")))
        try:
            answer = sock.recv(100)
        except ConnectionResetError:  # closed before our ping was read: a reset, also no answer
            answer = b""
        assert answer == b""


@pytest.mark.parametrize("name", ["take.mid", "Take 1.MIDI", "sets/verse/a.mid", "./a.mid", "~/a.mid"])
def test_confine_path_keeps_names_inside_the_folder(tmp_path, name):
    path = confine_path(tmp_path, name)
    assert path.is_relative_to(tmp_path.resolve()) and path.name == Path(name).name


@pytest.mark.parametrize("name, fragment", [
    ("../escape.mid", "without '..'"),
    ("a/../../escape.mid", "without '..'"),
    ("..\\escape.mid", "without '..'"),
    ("/etc/escape.mid", "without '..'"),
    ("C:\\Users\\x\\escape.mid", "without '..'"),
    ("\\\\server\\share\\escape.mid", "without '..'"),
    ("notes.txt", ".mid or .midi"),
    ("take", ".mid or .midi"),
    (".bashrc", ".mid or .midi"),
    ("", "MIDI file name"),
    ("  ", "MIDI file name"),
    (7, "MIDI file name"),
])
def test_confine_path_refuses_escapes(tmp_path, name, fragment):
    with pytest.raises(ParamError, match="save") as info:
        confine_path(tmp_path, name)
    assert fragment in str(info.value)


def test_confine_path_refuses_a_symlink_out_of_the_folder(tmp_path):
    root, outside = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "file.mid").symlink_to(outside / "file.mid")
    (root / "inner").mkdir()
    (root / "ok.mid").symlink_to(root / "inner" / "ok.mid")
    for name in ("link/x.mid", "file.mid"):
        with pytest.raises(ParamError, match="outside the output folder"):
            confine_path(root, name)
    assert confine_path(root, "ok.mid") == (root / "inner" / "ok.mid").resolve()


def test_save_writes_the_result_as_midi_in_the_output_folder(start, tmp_path):
    out = tmp_path / "out"
    server = start(store=quick_store(), output_dir=out)
    raw = Raw(server.port)
    lead = CLIP.with_notes(CLIP.notes, name="Lead")  # midi_io writes track names as latin-1
    upload(raw, "s", [lead])
    raw.send(P.PREFIX + "continue", "s", "save", "takes/lead.mid")
    assert raw.until_final("s")[-1] == (P.DONE, ["s", 1])
    saved = read_midi(out / "takes" / "lead.mid")
    assert [(n.pitch, n.start) for n in saved.notes] == [(n.pitch, n.start) for n in lead.sorted_notes() if not n.mute]
    upload(raw, "d", [lead])
    raw.send(P.PREFIX + "groove", "d", "save", "groove.mid")
    assert raw.until_final("d")[-1] == (P.DONE, ["d", 1])
    assert {t.channel for t in read_midi_tracks(out / "groove.mid").tracks} == {DRUM_CHANNEL}
    assert sorted(p.name for p in out.rglob("*")) == ["groove.mid", "lead.mid", "takes"]


def test_save_outside_the_folder_is_refused_before_anything_runs(start, tmp_path):
    out = tmp_path / "out"
    server = start(store=quick_store(), output_dir=out)
    raw = Raw(server.port)
    for rid, name in (("a", "../x.mid"), ("b", str(tmp_path / "x.mid")), ("c", "x.txt")):
        upload(raw, rid, [CLIP])
        raw.send(P.PREFIX + "continue", rid, "save", name)
        code, text = raw.error(rid)
        assert code == "bad_param" and "save" in text
        assert not any(address == P.ACK for address, _ in raw.skipped)
    assert not (tmp_path / "x.mid").exists() and not out.exists()


def test_save_that_cannot_write_answers_save_failed_and_leaves_nothing(start, tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the folder should be")
    server = start(store=quick_store(), output_dir=blocker)
    raw = Raw(server.port)
    upload(raw, "f", [CLIP])
    raw.send(P.PREFIX + "continue", "f", "save", "sub/take.mid")
    code, text = raw.error("f")
    assert code == "save_failed" and text.startswith("could not save take.mid: ")
    assert sorted(os.listdir(tmp_path)) == ["out"] and blocker.read_text().startswith("a file")
    raw.send(P.PING, "alive")
    assert raw.until_final("alive")[-1] == (P.DONE, ["alive", 0])
