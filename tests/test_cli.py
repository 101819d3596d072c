"""The command line: options derived from the Param table, offline tools, clean user errors."""
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import fake_bridge
import mido
import pytest
from synthetic_midi import write_song

from bridge import cli, offline
from bridge import protocol as P
from bridge.bundle import Bundle
from bridge.clip import Clip, Note
from bridge.midi_io import read_midi, read_midi_tracks, write_midi
from bridge.model_store import DEFAULT_BUNDLES_DIR, Loaded, ModelStore
from bridge.params import ParamError
from bridge.tools import TOOLS


class FakeMelodyModel:
    """Stands in for a trained model: appends one note per variation and records its params."""

    def __init__(self):
        self.calls = []

    def continue_clip(self, clip, params, ctx):
        self.calls.append(params)
        ctx.report(0.5, "sampling")
        return [clip.with_notes(clip.notes + (Note(60 + i, clip.length, 1.0),), length=clip.length + 4, name="")
                for i in range(params["variations"])]


@pytest.fixture
def fake_store(monkeypatch):
    model = FakeMelodyModel()
    bundle = Bundle(Path("fake"), {"name": "fake", "kind": "melody", "tools": ["continue"], "model_class": "Fake"}, {})
    monkeypatch.setattr(ModelStore, "from_dir", classmethod(lambda cls, d: ModelStore([Loaded(bundle, model)])))
    return model


@pytest.fixture
def primer(tmp_path):
    clip = Clip([Note(62, 0.0, 1.0, 90), Note(64, 1.5, 0.5, 70)], 4.0, 100.0, name="lead")
    return write_midi(tmp_path / "primer.mid", [clip])


def test_continue_writes_every_variation_as_a_track(fake_store, primer, tmp_path, capsys):
    out = tmp_path / "out.mid"
    code = cli.main(["continue", "--input", str(primer), "-o", str(out), "--variations", "3", "--temperature", "0.5",
                     "--no-include-primer", "--type", "0", "--scale-root", "2.0"])
    assert code == 0
    (params,) = fake_store.calls
    assert (params["variations"], params["temperature"], params["include_primer"]) == (3, 0.5, False)
    assert (params["type"], params["scale_root"], params["length"]) == ("melody", 2, 2)  # enum by index, float->int
    score = read_midi_tracks(out)
    assert [t.name for t in score.tracks] == ["continue 1/3", "continue 2/3", "continue 3/3"]
    assert [n.pitch for n in score.tracks[2].notes] == [62, 64, 62]
    assert score.tempo == 100.0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"continue: 3 clip(s), 9 notes, 2 bars each -> {out}"
    assert "continue:  50% sampling" in captured.err


def test_output_pattern_writes_one_file_per_result(fake_store, primer, tmp_path):
    assert cli.main(["continue", "-i", str(primer), "-o", str(tmp_path / "v{i}.mid"), "--variations", "2"]) == 0
    assert sorted(p.name for p in tmp_path.glob("v*.mid")) == ["v1.mid", "v2.mid"]
    assert [n.pitch for n in read_midi(tmp_path / "v2.mid").notes] == [62, 64, 61]


def test_every_param_of_every_tool_is_an_option():
    parser = cli.build_parser()
    for tool in TOOLS.values():
        given = ["-o", "x.mid"] + ["-i", "a.mid"] * tool.min_inputs
        args = parser.parse_args([tool.name] + given)
        assert all(getattr(args, p.name) is None for p in tool.params)  # not given: the tool default applies
        help_text = parser._subparsers._group_actions[0].choices[tool.name].format_help()
        for param in tool.params:
            assert offline.option(param) in help_text
            if param.kind in ("int", "float"):
                assert param.describe_range() in help_text


@pytest.mark.parametrize("argv, message", [
    (["--temperature", "5"], "argument --temperature: temperature must be 0-2, got 5.0"),
    (["--type", "bass"], "type must be one of melody, drums, got 'bass'"),
    (["--variations", "many"], "variations must be 1-8"),
    (["--seed", "16777216"], "seed must be 0-16777215, got 16777216"),
])
def test_bad_param_values_exit_2_with_the_range(primer, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["continue", "-i", str(primer), "-o", "x.mid"] + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_model_not_installed_is_a_clean_error(primer, tmp_path, capsys):
    code = cli.main(["continue", "-i", str(primer), "-o", str(tmp_path / "o.mid"), "--bundles", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"magenta-bridge: error: no melody model for continue is installed (searched {tmp_path}); "
                          "add a bundle there, or name a folder of bundles with --bundles or MAGENTA_BRIDGE_BUNDLES")
    assert "Traceback" not in err
    assert not (tmp_path / "o.mid").exists()


def test_user_errors_exit_2(fake_store, primer, tmp_path, capsys):
    assert cli.main(["continue", "-i", str(tmp_path / "nope.mid"), "-o", str(tmp_path / "o.mid")]) == 2
    assert "nope.mid: No such file or directory" in capsys.readouterr().err
    assert cli.main(["interpolate", "-i", str(primer), "-o", str(tmp_path / "o.mid")]) == 2
    assert "interpolate takes 2 input clip(s), got 1" in capsys.readouterr().err
    assert cli.main(["continue", "-i", str(primer), "--track", "bass", "-o", str(tmp_path / "o.mid")]) == 2
    assert "no track named 'bass'" in capsys.readouterr().err


def test_models_lists_bundles_and_params(tmp_path, capsys):
    assert cli.main(["models", "--bundles", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(none installed)" in out
    for tool in TOOLS.values():
        assert f"\n{tool.name}: {tool.help}" in out
        assert all(offline.option(p) in out for p in tool.params)


def test_serve_passes_options_to_the_server(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("bridge.serving")
    fake.serve = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "bridge.serving", fake)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("MAGENTA_BRIDGE_BUNDLES", str(tmp_path / "mine"))
    assert cli.main(["serve", "--bundles", str(tmp_path), "--port", "9800", "--allow", "10.0.0.2", "10.0.0.3",
                     "--timeout", "30"]) == 0
    assert cli.main(["serve", "--tcp-port", "9701", "--log-level", "debug", "--queue-size", "3"]) == 0
    searched = (tmp_path / "mine", tmp_path / "data" / "magenta-bridge" / "bundles", DEFAULT_BUNDLES_DIR)
    assert calls == [{"host": "127.0.0.1", "port": 9800, "bundles_dir": (tmp_path,), "log_level": "info",
                      "default_timeout": 30.0, "allow": ["10.0.0.2", "10.0.0.3"]},
                     {"host": "127.0.0.1", "port": 9700, "bundles_dir": searched, "log_level": "debug",
                      "tcp_port": 9701, "queue_size": 3}]


def test_serve_allow_takes_only_ip_addresses(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--allow", "10.0.0.2", "not-an-ip"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --allow: not an IP address: 'not-an-ip'" in err and "Traceback" not in err


def test_doctor_reports_refused_bundles_and_busy_port(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        assert cli.main(["doctor", "--bundles", str(tmp_path), "--port", str(port)]) == 1
    out = capsys.readouterr().out
    assert "✓ Python >= 3.11" in out and "✓ import mido" in out
    assert "✗ bundle broken" in out and "no SHA256SUMS file" in out
    assert f"✗ UDP 127.0.0.1:{port} free" in out


def test_serve_path_imports_no_tensorflow(tmp_path):
    pytest.importorskip("bridge.serving")
    label, ok, detail = cli._check_serve_imports([tmp_path])
    assert ok, detail


def test_console_script_and_import_stay_light():
    script = shutil.which("magenta-bridge", path=str(Path(sys.executable).parent))
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert all(name in done.stdout for name in ["serve", "doctor", "models", *TOOLS])
    check = "import sys, bridge.cli; bridge.cli.build_parser(); print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# --- a newcomer's rough edges (issue 19) ------------------------------------------------------

@pytest.fixture
def fakes(monkeypatch):
    """Every tool answered by fake_bridge's deterministic models (melody and drums)."""
    monkeypatch.setattr(ModelStore, "from_dir", classmethod(lambda cls, d: fake_bridge.fake_store()))


def song(path, drums_too=True):
    """A POP909-like file: MELODY, BRIDGE and a busier PIANO track, and a drum track."""
    tracks = {"MELODY": [(72 + i % 3, i, 1.0, 90) for i in range(8)],
              "BRIDGE": [(60, i, 0.5, 80) for i in range(12)],
              "PIANO": [(48 + i % 12, i * 0.5, 0.5, 70) for i in range(40)]}
    write_song(path, tracks)
    if drums_too:
        mid = mido.MidiFile(path)
        write_song(path.with_name("drums.mid"), {"DRUMS": [(36, i, 0.25, 100) for i in range(6)]}, drums=True)
        mid.tracks.append(mido.MidiFile(path.with_name("drums.mid")).tracks[1])
        mid.save(path)
    return path


def test_multi_track_input_reads_melody_drums_or_the_busiest_and_says_which(fakes, tmp_path, capsys):
    path = song(tmp_path / "song.mid")
    assert cli.main(["continue", "-i", str(path), "-o", str(tmp_path / "c.mid"), "--variations", "1"]) == 0
    assert {n.pitch for n in read_midi(tmp_path / "c.mid").notes} == {72, 73, 74}  # the primer: MELODY only
    err = capsys.readouterr().err
    assert "note: song.mid: read track 1 'MELODY'; not read: track 2 'BRIDGE' (12 notes), track 3 'PIANO' " \
           "(40 notes), track 4 'DRUMS' (6 notes) (--track picks one)" in err
    for argv in (["groove"], ["continue", "--type", "drums", "--variations", "1"]):
        assert cli.main(argv + ["-i", str(path), "-o", str(tmp_path / "d.mid")]) == 0
        assert {n.pitch for n in read_midi(tmp_path / "d.mid").notes} <= {36, 72}  # the drum channel only
        assert "read track 4 'DRUMS'" in capsys.readouterr().err
    unnamed = write_song(tmp_path / "unnamed.mid", {"a": [(50, 0, 1, 90)], "b": [(64, i, 1, 90) for i in range(5)]})
    assert cli.main(["drumify", "-i", str(unnamed), "-o", str(tmp_path / "k.mid")]) == 0
    assert len(read_midi(tmp_path / "k.mid").notes) == 5  # no drum channel: the busiest track's rhythm
    assert "read track 2 'b'; not read: track 1 'a' (1 note)" in capsys.readouterr().err
    assert cli.main(["continue", "-i", str(path), "--track", "BRIDGE", "-o", str(tmp_path / "b.mid")]) == 0
    assert "note:" not in capsys.readouterr().err  # the user chose: nothing to say


def test_a_melody_tool_on_drums_alone_or_an_empty_track_is_refused(fakes, tmp_path, capsys):
    drums = write_song(tmp_path / "beat.mid", {"kit": [(36, i, 0.25, 100) for i in range(4)]}, drums=True)
    assert cli.main(["continue", "-i", str(drums), "-o", str(tmp_path / "o.mid")]) == 2
    assert "holds only drum-channel notes; add --type drums" in capsys.readouterr().err
    assert cli.main(["continue", "-i", str(drums), "--track", "kit", "-o", str(tmp_path / "o.mid")]) == 0
    path = song(tmp_path / "song.mid", drums_too=False)
    assert cli.main(["continue", "-i", str(path), "--track", "0", "-o", str(tmp_path / "o.mid")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: track 0 has no notes; tracks with notes: track 1 'MELODY' (8 notes)" in err
    empty = write_song(tmp_path / "empty.mid", {"lead": []})
    assert cli.main(["groove", "-i", str(empty), "-o", str(tmp_path / "o.mid")]) == 2
    assert "empty.mid: the file has no notes" in capsys.readouterr().err
    assert cli.main(["generate", "-i", str(empty), "-o", str(tmp_path / "g.mid"), "--variations", "1"]) == 0


def test_output_folders_are_made_before_the_model_runs(fake_store, primer, tmp_path):
    out = tmp_path / "new" / "deeper" / "v{i}.mid"
    assert cli.main(["continue", "-i", str(primer), "-o", str(out), "--variations", "2"]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["v1.mid", "v2.mid"]
    (tmp_path / "file").write_text("not a folder")
    assert cli.main(["continue", "-i", str(primer), "-o", str(tmp_path / "file" / "o.mid")]) == 2
    assert len(fake_store.calls) == 1  # the bad -o failed before a second model run


def test_interpolate_says_when_its_inputs_differ_in_length(fakes, tmp_path, capsys):
    short = write_midi(tmp_path / "a.mid", [Clip([Note(60, 0.0, 1.0)], 4.0)])
    long = write_midi(tmp_path / "b.mid", [Clip([Note(64, 0.0, 1.0), Note(65, 126.0, 1.0)], 128.0)])
    assert cli.main(["interpolate", "-i", str(short), str(long), "-o", str(tmp_path / "o.mid")]) == 0
    assert "note: A is 1 bar and B 32 bars: the results are as long as A" in capsys.readouterr().err
    assert cli.main(["interpolate", "-i", str(short), str(short), "-o", str(tmp_path / "o.mid")]) == 0
    assert "note:" not in capsys.readouterr().err


def test_a_bundle_of_the_wrong_kind_is_refused(fakes, primer, tmp_path, capsys):
    assert cli.main(["continue", "-i", str(primer), "-o", str(tmp_path / "o.mid"), "--bundle", "fake-drums"]) == 2
    assert ("bundle fake-drums is a drums model and this continue request is for melody: pick a melody bundle "
            "or set type drums") in capsys.readouterr().err
    assert cli.main(["groove", "-i", str(primer), "-o", str(tmp_path / "o.mid"), "--bundle", "fake-melody"]) == 2
    assert "this groove request is for drums: pick a drums bundle\n" in capsys.readouterr().err
    with fake_bridge.running_server() as server:
        peer = fake_bridge.OscPeer(server.port)
        try:
            peer.send("/bridge/generate", "k", "bundle", "fake-drums")
            assert peer.until_final("k")[-1][1][:2] == ["k", "bad_param"]
        finally:
            peer.close()


def test_bars_is_offered_as_its_choices_everywhere(fakes, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "-o", str(tmp_path / "o.mid"), "--bars", "3"])
    assert "bars must be one of 1, 2, 4, 8, got 3" in capsys.readouterr().err
    assert cli.main(["generate", "-o", str(tmp_path / "o.mid"), "--bars", "8", "--variations", "1"]) == 0
    assert read_midi(tmp_path / "o.mid").length == 32.0
    assert cli.main(["models", "--bundles", str(tmp_path)]) == 0
    assert "--bars             one of 1, 2, 4, 8, default 4." in capsys.readouterr().out
    with fake_bridge.running_server() as server:
        peer = fake_bridge.OscPeer(server.port)
        try:
            peer.send(P.MODELS, "m")
            params = {(a[1], a[2]): a for address, a in peer.until_final("m") if address == P.PARAM}
            assert params[("generate", "bars")][3:8] == ["int", 1.0, 8.0, 4, "1,2,4,8"]
            peer.send("/bridge/generate", "b", "bars", 3)
            assert peer.until_final("b")[-1][1][:2] == ["b", "bad_param"]
            # every advertised int maximum is taken (the seed's was once one past what was accepted)
            peer.send("/bridge/generate", "s", "seed", params[("generate", "seed")][5], "variations", 1)
            assert peer.until_final("s")[-1][0] == P.DONE
        finally:
            peer.close()
    for tool in TOOLS.values():
        for param in (p for p in tool.params if p.kind == "int"):
            assert param.coerce(param.max) == param.max
            with pytest.raises(ParamError):
                param.coerce(param.max + 1)


def test_a_second_serve_names_the_port_in_use(tmp_path, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        assert cli.main(["serve", "--port", str(port), "--bundles", str(tmp_path)]) == 2
    assert (f"UDP port {port} on 127.0.0.1 is already in use: is a bridge already running? `magenta-bridge doctor` "
            "tells; --port picks another port") in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        tcp = busy.getsockname()[1]
        udp = fake_bridge.free_udp_port()
        assert cli.main(["serve", "--port", str(udp), "--tcp-port", str(tcp), "--bundles", str(tmp_path)]) == 2
    assert f"TCP port {tcp} on 127.0.0.1 is already in use" in capsys.readouterr().err


def test_doctor_recognises_a_running_bridge(tmp_path, capsys):
    with fake_bridge.running_server() as server:
        cli.main(["doctor", "--bundles", str(tmp_path), "--port", str(server.port)])
    out = capsys.readouterr().out
    assert f"! UDP 127.0.0.1:{server.port}" in out and "a bridge is already running on this port" in out
    assert "✗ UDP" not in out


def test_a_bad_drum_map_is_a_clean_error_offline_and_over_osc(tmp_path, capsys):
    drums = write_song(tmp_path / "beat.mid", {"kit": [(36, i, 0.25, 100) for i in range(4)]}, drums=True)
    for tool in ("groove", "drumify"):
        assert cli.main([tool, "-i", str(drums), "-o", str(tmp_path / "o.mid"), "--drum-map", "1,2"]) == 2
        err = capsys.readouterr().err
        assert "drum map must be 9 pitches" in err and "Traceback" not in err
    clip = read_midi(drums)
    with fake_bridge.running_server(store=ModelStore.from_dir(DEFAULT_BUNDLES_DIR)) as server:
        peer = fake_bridge.OscPeer(server.port)
        try:
            for rid, tool in (("g", "groove"), ("d", "drumify")):
                for data in P.clip_messages(P.CLIP, P.NOTES, rid, clip, 0, 1):
                    peer.sock.sendto(data, ("127.0.0.1", server.port))
                peer.send(f"/bridge/{tool}", rid, "drum_map", "1,2")
                final = peer.until_final(rid)[-1]
                assert final[1][:2] == [rid, "bad_param"], final
        finally:
            peer.close()
