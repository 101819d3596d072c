"""Bundles and devices are found after any install: the search path, `bundles`, `devices`, and the
package as a wheel lays it out, run from outside the checkout.

.ci/run also builds the wheel, installs it in a fresh venv and runs it from /tmp; the test here
builds the same package tree with setup.py's build step (no network, no pip) and runs it.
"""
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import cli, install
from bridge.midi_io import read_midi, write_midi
from bridge.clip import Clip, Note
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent.name for p in (REPO / "bundles").glob("*/config.json"))
DEVICES = sorted(p.name for p in (REPO / "m4l").glob("*.amxd"))


@pytest.fixture
def home(monkeypatch, tmp_path):
    """A user with nothing installed yet: empty home and data folders, no MAGENTA_BRIDGE_BUNDLES."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(install.ENV_BUNDLES, raising=False)
    return tmp_path


def copy_shipped(name: str, folder: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_BUNDLES_DIR / name, folder / name))


def test_the_search_path_is_env_then_user_folder_then_shipped(home, monkeypatch):
    user = home / "data" / "magenta-bridge" / "bundles"
    assert install.bundle_search_path() == (user, DEFAULT_BUNDLES_DIR)
    assert DEFAULT_BUNDLES_DIR == REPO / "bundles"  # a checkout serves its own bundles/
    monkeypatch.setenv(install.ENV_BUNDLES, f"{home / 'a'}:{home / 'b'}:{home / 'a'}")
    assert install.bundle_search_path() == (home / "a", home / "b", user, DEFAULT_BUNDLES_DIR)
    assert str(install.bundle_search_path()) == f"{home / 'a'}:{home / 'b'}:{user}:{DEFAULT_BUNDLES_DIR}"
    assert install.bundle_search_path(home / "only") == (home / "only",)
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # the XDG spec says to ignore a relative one
    assert install.user_bundles_dir() == home / "home" / ".local" / "share" / "magenta-bridge" / "bundles"


def test_a_bundle_in_an_earlier_folder_wins(home):
    mine = copy_shipped("melody_rnn", home / "mine")
    copy_shipped("melody_rnn", home / "later")
    store = ModelStore.from_dir([home / "missing", home / "mine", home / "later"])
    assert [item.bundle.path for item in store.loaded] == [mine]
    assert store.folders == [home / "missing", home / "mine", home / "later"]


def test_models_and_doctor_print_the_search_path(home, monkeypatch, capsys):
    monkeypatch.setenv(install.ENV_BUNDLES, str(home / "typo"))
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"  {home / 'typo'}  (no such folder)" in out
    assert f"  {DEFAULT_BUNDLES_DIR}  ({len(SHIPPED)} bundles)" in out
    for name in SHIPPED:
        assert f"✓ {name}  " in out and f"in {DEFAULT_BUNDLES_DIR})" in out
    assert cli.main(["doctor", "--port", "0"]) == 1  # a folder the user listed is missing
    out = capsys.readouterr().out
    assert f"✗ bundle folder {home / 'typo'}" in out
    assert re.search(rf"✓ bundle folder {re.escape(str(install.user_bundles_dir()))} +not made yet", out)  # fine
    assert all(f"✓ bundle {name}" in out for name in SHIPPED)


def test_a_missing_bundles_folder_is_named(capsys):
    for argv in (["models"], ["doctor"], ["serve"], ["bundles"], ["continue", "-i", "x.mid", "-o", "y.mid"],
                 ["play", "--tool", "generate"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv[:1] + ["--bundles", "/nonexistent"] + argv[1:])
        assert exit_info.value.code == 2
        assert "argument --bundles: no such folder: /nonexistent" in capsys.readouterr().err


def test_doctor_fails_when_no_bundle_loads(tmp_path, capsys):
    assert cli.main(["doctor", "--bundles", str(tmp_path), "--port", "0"]) == 1
    assert "✗ bundles" in capsys.readouterr().out


def test_bundles_copies_by_name_or_folder_and_checks_the_copy(home, capsys):
    assert cli.main(["bundles", "--copy", "melody_rnn"]) == 0
    user = install.user_bundles_dir()
    assert ModelStore.from_dir(user).loaded[0].bundle.path == user / "melody_rnn"
    assert cli.main(["bundles", "--copy", "melody_rnn"]) == 2  # never replaced unasked
    assert "exists; pass --force" in capsys.readouterr().err
    assert cli.main(["bundles", "--copy", "melody_rnn", "--force"]) == 0

    export = copy_shipped("drums_rnn", home / "runs" / "export")
    assert cli.main(["bundles", "--copy", str(export)]) == 0
    assert (user / "drums_rnn" / "weights.npz").is_file()

    broken = copy_shipped("drums_rnn", home / "broken")
    (broken / "weights.npz").write_bytes(b"half a file")
    assert cli.main(["bundles", "--copy", str(broken), "--to", str(home / "elsewhere"), "--force"]) == 2
    assert "checksum" in capsys.readouterr().err
    assert not (home / "elsewhere").exists() or not any((home / "elsewhere").iterdir())
    assert cli.main(["bundles", "--copy", "no_such_bundle"]) == 2
    assert "no bundle 'no_such_bundle'" in capsys.readouterr().err

    capsys.readouterr()
    assert cli.main(["bundles"]) == 0
    out = capsys.readouterr().out
    assert f"  {user}  (2 bundles)" in out
    assert f"    melody_rnn  (not loaded: the one in {user} is)" in out


def test_bundles_all_copies_every_shipped_bundle(home, monkeypatch, capsys):
    shipped = home / "shipped"
    for name in ("melody_rnn", "drums_rnn"):
        copy_shipped(name, shipped)
    monkeypatch.setattr(install, "shipped", lambda name: shipped)
    assert cli.main(["bundles", "--all"]) == 0
    assert [p.name for p in install.bundle_folders(install.user_bundles_dir())] == ["drums_rnn", "melody_rnn"]


def test_devices_go_where_live_lists_each_kind(home, capsys):
    library = home / "User Library"
    assert cli.main(["devices", "--copy"]) == 2  # no Live here: the default library is missing
    assert "pass --to" in capsys.readouterr().err
    library.mkdir()
    assert cli.main(["devices", "--copy", "--to", str(library)]) == 0
    copied = sorted(p.relative_to(library).as_posix() for p in library.rglob("*.amxd"))
    assert copied == sorted(
        ("MIDI Tools/Max Generators/" if name == "MB Generate Tool.amxd" else
         "MIDI Tools/Max Transformations/" if name.endswith(" Tool.amxd") else "magenta-bridge/") + name
        for name in DEVICES)
    assert cli.main(["devices", "--copy", "--to", str(library)]) == 0  # the same files again: fine
    (library / "magenta-bridge" / "MB Groove.amxd").write_bytes(b"edited")
    assert cli.main(["devices", "--copy", "--to", str(library)]) == 2
    assert "MB Groove.amxd differs" in capsys.readouterr().err
    assert cli.main(["devices", "--copy", "--to", str(library), "--force"]) == 0
    assert (library / "magenta-bridge" / "MB Groove.amxd").read_bytes() == (REPO / "m4l" / "MB Groove.amxd").read_bytes()
    capsys.readouterr()
    assert cli.main(["devices"]) == 0
    assert f"Max for Live devices in {REPO / 'm4l'}:" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="setup.py's build step needs setuptools")
def test_the_built_package_carries_bundles_and_devices_and_runs_outside_the_checkout(tmp_path):
    """The tree a wheel holds (setup.py's build_py), imported from elsewhere, with no checkout in
    sight: `models` lists every shipped bundle, `continue` runs, `devices` finds the devices."""
    site, egg = tmp_path / "site", tmp_path / "egg"
    egg.mkdir()
    stale = site / "bridge" / "_data" / "bundles" / "deleted_since"  # left in build/ by an older build
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    done = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(egg), "build_py",
                           "--build-lib", str(site)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.parent.name for p in (site / "bridge" / "_data" / "bundles").glob("*/config.json")) == SHIPPED
    assert sorted(p.name for p in (site / "bridge" / "_data" / "m4l").glob("*.amxd")) == DEVICES
    work = tmp_path / "elsewhere"
    work.mkdir()
    write_midi(work / "riff.mid", [Clip([Note(60 + i % 5, i * 0.5, 0.5, 90) for i in range(8)], 4.0, 110.0)])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path / "home"), "PYTHONNOUSERSITE": "1"}

    def run(*argv: str) -> str:
        code = "import sys; from bridge.cli import main; sys.exit(main(sys.argv[1:]))"
        done = subprocess.run([sys.executable, "-c", code, *argv], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    shipped = site / "bridge" / "_data" / "bundles"
    out = run("models")
    assert f"  {shipped}  ({len(SHIPPED)} bundles)" in out and str(REPO) not in out
    assert all(f"✓ {name}  " in out for name in SHIPPED)
    assert "continue: 2 clip(s)" in run("continue", "-i", "riff.mid", "-o", "out/riff.mid", "--variations", "2")
    assert len(read_midi(work / "out" / "riff.mid").notes) > 8
    assert f"Max for Live devices in {site / 'bridge' / '_data' / 'm4l'}:" in run("devices")


def test_the_readme_tour_activates_the_venv_and_names_real_commands():
    readme = (REPO / "README.md").read_text()
    tour = readme.split("## A 60-second tour", 1)[1].split("\n## ", 1)[0]
    block = tour.split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.startswith("source .venv/bin/activate\n") and ".venv/bin/magenta-bridge" in tour
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    code = "".join(re.findall(r"```sh\n(.*?)```", readme, re.S))
    used = set(re.findall(r"^(?:\.venv/bin/)?magenta-bridge ([a-z]+)", code, re.M))
    used |= set(re.findall(r"`magenta-bridge ([a-z]+)", readme))
    assert used and used <= set(commands), used - set(commands)
    assert {"bundles", "devices", "models", "doctor", "serve"} <= used
