"""The Python batch examples, run against a real bridge with the fake model store."""
import importlib.util
from pathlib import Path

import pytest
from fake_bridge import MELODY, expected, running_server

from bridge.clip import Clip, Note
from bridge.midi_io import read_midi, read_midi_tracks, write_midi

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "python"


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pitches_and_starts(clip_notes) -> list[tuple]:
    return sorted((n.pitch, round(n.start * 480) / 480, n.velocity) for n in clip_notes)


@pytest.fixture(scope="module")
def server():
    with running_server() as server:
        yield server


def test_continue_folder_continues_every_file_and_reports_bad_ones(server, tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    riffs = {"a": MELODY, "b": MELODY.with_notes(MELODY.notes[:5], length=4.0, name="Short")}
    for stem, clip in riffs.items():
        write_midi(source / f"{stem}.mid", [clip])
    (source / "broken.mid").write_bytes(b"not midi")
    (source / "notes.txt").write_text("ignored")
    code = example("continue_folder").main([str(source), str(tmp_path / "out"), "--port", str(server.port),
                                            "--variations", "3", "--length", "1"])
    assert code == 1  # broken.mid failed, the others went through
    out = capsys.readouterr()
    assert "broken.mid: failed" in out.err and "a.mid: 3 variation(s)" in out.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_continued.mid", "b_continued.mid"]
    for stem in riffs:
        score = read_midi_tracks(tmp_path / "out" / f"{stem}_continued.mid")
        want = expected("continue", [read_midi(source / f"{stem}.mid")], {"variations": 3, "length": 1})
        assert [pitches_and_starts(t.notes) for t in score.tracks] == [pitches_and_starts(c.notes) for c in want]
        assert (score.tempo, score.time_signature) == (MELODY.tempo, MELODY.time_signature)


def test_interpolation_grid_writes_size_squared_files(server, tmp_path, capsys):
    corners = []
    for i, pitch in enumerate((60, 64, 67, 71)):
        corners.append(str(write_midi(tmp_path / f"c{i}.mid", [Clip([Note(pitch, 0.0, 1.0)], 4.0, 100.0)])))
    out = tmp_path / "grid"
    assert example("interpolation_grid").main([*corners, str(out), "--size", "3", "--port", str(server.port)]) == 0
    assert f"3x3 grid -> {out}" in capsys.readouterr().out
    clips = [read_midi(p) for p in corners]
    left = expected("interpolate", [clips[0], clips[2]], {"steps": 3, "keep_ends": True})
    right = expected("interpolate", [clips[1], clips[3]], {"steps": 3, "keep_ends": True})
    for r in range(3):
        row = expected("interpolate", [left[r], right[r]], {"steps": 3, "keep_ends": True})
        for c in range(3):
            got = read_midi(out / f"r{r}c{c}.mid")
            assert pitches_and_starts(got.notes) == pitches_and_starts(row[c].notes)
            assert got.name == f"r{r}c{c}"
    assert len(read_midi(out / "grid.mid").notes) == 9
