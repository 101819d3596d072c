"""The command line: options derived from the Param table, offline tools, clean user errors."""
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bridge import cli
from bridge.bundle import Bundle
from bridge.clip import Clip, Note
from bridge.midi_io import read_midi, read_midi_tracks, write_midi
from bridge.model_store import DEFAULT_BUNDLES_DIR, Loaded, ModelStore
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
    bundle = Bundle(Path("fake"), {"name": "fake", "kind": "melody", "tools": ["continue"], "model_class": "Fake",
                                   "hparams": {}}, {})
    monkeypatch.setattr(ModelStore, "from_dir", classmethod(lambda cls, d: ModelStore([Loaded(bundle, model)])))
    return model


@pytest.fixture
def primer(tmp_path):
    clip = Clip([Note(62, 0.0, 1.0, 90), Note(64, 1.5, 0.5, 70)], 4.0, 100.0, name="lead")
    return write_midi(tmp_path / "primer.mid", [clip])


def test_continue_writes_every_variation_as_a_track(fake_store, primer, tmp_path, capsys):
    out = tmp_path / "out.mid"
    code = cli.main(["continue", "--input", str(primer), "-o", str(out), "--variations", "3", "--temperature", "0.5",
                     "--no-include-primer", "--type", "1", "--scale-root", "2.0"])
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
            assert cli._option(param) in help_text
            if param.kind in ("int", "float"):
                assert param.describe_range() in help_text


@pytest.mark.parametrize("argv, message", [
    (["--temperature", "5"], "argument --temperature: temperature must be 0-2, got 5.0"),
    (["--type", "bass"], "type must be one of auto, melody, poly, drums, got 'bass'"),
    (["--variations", "many"], "variations must be 1-8"),
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
    assert err.startswith("magenta-bridge: error: no melody model for continue is installed")
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
        assert all(cli._option(p) in out for p in tool.params)


def test_serve_passes_options_to_the_server(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("bridge.server")
    fake.serve = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "bridge.server", fake)
    assert cli.main(["serve", "--bundles", str(tmp_path), "--port", "9800", "--allow", "10.0.0.2", "10.0.0.3",
                     "--timeout", "30"]) == 0
    assert cli.main(["serve", "--tcp-port", "9701", "--log-level", "debug", "--queue-size", "3"]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 9800, "bundles_dir": tmp_path, "log_level": "info",
                      "default_timeout": 30.0, "allow": ["10.0.0.2", "10.0.0.3"]},
                     {"host": "127.0.0.1", "port": 9700, "bundles_dir": DEFAULT_BUNDLES_DIR, "log_level": "debug",
                      "tcp_port": 9701, "queue_size": 3}]


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
    pytest.importorskip("bridge.server")
    label, ok, detail = cli._check_serve_imports(tmp_path)
    assert ok, detail


def test_console_script_and_import_stay_light():
    script = shutil.which("magenta-bridge", path=str(Path(sys.executable).parent))
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert all(name in done.stdout for name in ["serve", "doctor", "models", *TOOLS])
    check = "import sys, bridge.cli; bridge.cli.build_parser(); print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
