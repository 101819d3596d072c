"""The dataset stage on Apache Beam (the `scale` extra) writes the cache the local path writes."""
import json

import pytest
from synthetic_midi import drum_folder, melody_folder
from test_pipeline import _same_cache

from bridge.cli import main
from bridge.data import pipeline
from bridge.models.configs import CONFIGS

pytest.importorskip("apache_beam", reason="the scale extra (apache-beam) is not installed")
from bridge.data import beam_pipeline  # noqa: E402


@pytest.fixture
def folders(tmp_path):
    songs = melody_folder(tmp_path / "songs", songs=16, bars=12)
    (songs / "broken.mid").write_bytes(b"MThd nonsense")
    return songs, drum_folder(tmp_path / "groove", files=8, bars=8)


@pytest.mark.parametrize("config,which", [("melody_rnn", 0), ("drums_rnn", 1), ("melody_rnn", None)])
def test_beam_direct_runner_writes_the_local_cache(tmp_path, folders, config, which):
    """One folder with a path-hash split and an unreadable file, one split by its info.csv,
    and both together: the same examples, split and statistics as `pipeline.build`."""
    data = list(folders) if which is None else folders[which]
    local = pipeline.build(CONFIGS[config], data, tmp_path / "local", quiet=True)
    beam = beam_pipeline.build(CONFIGS[config], data, tmp_path / "beam", ["--runner=DirectRunner"])
    assert beam.name == local.name and "shards" not in pipeline.manifest(beam)
    _same_cache(local, beam)
    assert pipeline.summary(pipeline.manifest(beam)) == pipeline.summary(pipeline.manifest(local))


def test_dataset_command_on_beam_processes_writes_the_local_shards(tmp_path, folders, capsys):
    """`dataset --workers 2` runs Beam's DirectRunner in two processes; the shards, and the
    table it prints, are those of the one-process path."""
    songs, _ = folders
    assert main(["dataset", "melody_rnn", "--data", str(songs), "--cache", str(tmp_path / "local"),
                 "--shard-files", "3"]) == 0
    local_out = capsys.readouterr().out
    assert main(["dataset", "melody_rnn", "--data", str(songs), "--cache", str(tmp_path / "beam"), "--shard-files",
                 "3", "--workers", "2", "--direct_running_mode=multi_processing"]) == 0
    beam_out = capsys.readouterr().out
    local, beam = (next((tmp_path / name).iterdir()) for name in ("local", "beam"))
    _same_cache(local, beam)
    assert pipeline.manifest(beam)["shards"] == pipeline.manifest(local)["shards"]
    assert beam_out.replace(str(beam), "") == local_out.replace(str(local), "")
    assert "skipped: unreadable" in beam_out and json.loads((beam / "manifest.json").read_text())["shard_files"] == 3
