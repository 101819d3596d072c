"""Training end to end on tiny synthetic data: train, TensorBoard, export, serve, resume."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic_midi import drum_folder, melody_folder

from bridge.bundle import BundleError, load_bundle
from bridge.clip import Clip, Note
from bridge.model_store import ModelStore
from bridge.tools import ToolContext

pytest.importorskip("tensorflow")
from bridge.train import checkpoint  # noqa: E402
from bridge.train.export import export  # noqa: E402
from bridge.train.trainer import train  # noqa: E402

TINY = "units=16,batch_size=8,eval_every=5,checkpoint_every=5,log_every=5,image_every=5,eval_examples=16"


def _tags(folder: Path) -> set[str]:
    import tensorflow as tf

    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {v.tag for v in event.summary.value}
    return tags


def test_train_export_and_serve(tmp_path):
    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    run_dir = tmp_path / "run"
    result = train("melody_rnn", data, run_dir, TINY, steps=10, seed=3, cache_root=tmp_path / "cache", quiet=True)
    assert result["steps"] == 10 and result["eval"]["loss"] > 0 and "ngram4_loss" in result["baselines"]
    assert {"loss", "accuracy", "perplexity", "learning_rate", "samples"} <= _tags(run_dir / "tb" / "train")
    assert {"loss", "accuracy", "perplexity"} <= _tags(run_dir / "tb" / "eval")

    bundle_dir = export(run_dir, tmp_path / "bundles" / "tiny_melody")
    store = ModelStore.from_dir(tmp_path / "bundles")
    assert not store.refused
    model = store.require("continue", "melody")
    config = json.loads((bundle_dir / "config.json").read_text())
    assert config["eval"]["loss"] == pytest.approx(result["eval"]["loss"])
    with np.load(bundle_dir / "eval_slice.npz", allow_pickle=False) as npz:
        nll, accuracy = model.nll(npz["events"], npz["grid"], npz["length"])  # melody_rnn is meter-aware
    assert nll == pytest.approx(config["eval"]["slice"]["loss"], abs=1e-4)
    assert accuracy == pytest.approx(config["eval"]["slice"]["accuracy"], abs=1e-6)
    card = (bundle_dir / "MODEL_CARD.md").read_text()
    assert f"{config['eval']['loss']:.4f}" in card and "check that its license" in card
    assert f"| loss (NLL, nats per step) | {config['eval']['loss']:.4f} |" in card and "| perplexity |" in card
    assert "10 steps (stopped by --steps)" in card and config["training"]["stopped"] == "--steps"
    # The data folder is shown relative to where training ran, not as this machine's absolute path.
    shown = config["data"]["sources"][0]["path"]
    assert not os.path.isabs(shown) and (Path.cwd() / shown).resolve() == data.resolve() and f"`{shown}`" in card

    clip = Clip([Note(60 + i, i, 1.0, 90) for i in range(8)], length=8.0, name="up")
    outs = model.continue_clip(clip, {"variations": 2, "length": 2, "temperature": 1.0, "seed": 1, "scale_root": None,
                                      "scale_mode": "major", "include_primer": True}, ToolContext(store))
    assert [o.length for o in outs] == [16.0, 16.0]

    # A corrupted weights file or an edited config is refused, naming the file.
    for name, damage in (("weights.npz", lambda p: p.write_bytes(p.read_bytes()[:-20])),
                         ("config.json", lambda p: p.write_text(p.read_text().replace('"units": 16', '"units": 32')))):
        broken = tmp_path / f"broken_{name}"
        shutil.copytree(bundle_dir, broken)
        damage(broken / name)
        with pytest.raises(BundleError, match=f"checksum mismatch for {name}"):
            load_bundle(broken)

    # The same seed trains the same weights.
    again = tmp_path / "again"
    train("melody_rnn", data, again, TINY, steps=10, seed=3, cache_root=tmp_path / "cache", quiet=True)
    first, _, _ = checkpoint.load(run_dir / "checkpoints" / "ckpt-10.npz")
    second, _, _ = checkpoint.load(again / "checkpoints" / "ckpt-10.npz")
    assert all((a == b).all() for a, b in zip(first, second))


def test_run_with_other_settings_is_refused(tmp_path):
    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    train("melody_rnn", data, tmp_path / "run", TINY, steps=1, seed=0, cache_root=tmp_path / "cache", quiet=True)
    with pytest.raises(ValueError, match="another hparams"):
        train("melody_rnn", data, tmp_path / "run", TINY + ",units=8", steps=2, cache_root=tmp_path / "cache", quiet=True)
    # A run written before an hparam existed resumes: it ran with what is now that hparam's default.
    run_json = tmp_path / "run" / "run.json"
    run = json.loads(run_json.read_text())
    del run["hparams"]["lookback"]
    run_json.write_text(json.dumps(run))
    train("melody_rnn", data, tmp_path / "run", TINY, steps=2, seed=0, cache_root=tmp_path / "cache", quiet=True)
    with pytest.raises(ValueError, match="bad hparam 'nonsense=1'"):
        train("melody_rnn", data, tmp_path / "other", "nonsense=1", cache_root=tmp_path / "cache", quiet=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from bridge.cli import main; sys.exit(main())", *args]


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    started = time.monotonic()
    data = drum_folder(tmp_path / "groove", files=12, bars=16)
    args = ["train", "drums_rnn", "--data", str(data), "--run-dir", str(tmp_path / "run"), "--cache",
            str(tmp_path / "cache"), "--hparams", "units=16,batch_size=4,checkpoint_every=2,eval_every=1000,log_every=1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(_cli(*args, "--steps", "100000"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "run" / "checkpoints"
    deadline = time.monotonic() + 120
    try:
        while checkpoint.latest(ckpts) is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    latest = checkpoint.latest(ckpts)
    assert latest is not None, "no checkpoint was written"
    weights, _, meta = checkpoint.load(latest)
    step = meta["step"]
    done = subprocess.run(_cli(*args, "--steps", str(step + 3)), env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed from step {step} ({latest.name}, weights {checkpoint.fingerprint(weights)})" in done.stdout
    logged = [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("step ")]
    assert logged == [step + 1, step + 2, step + 3]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["steps"] == step + 3 and 0 < result["wall_time_s"] < time.monotonic() - started
    # Both invocations are kept, and the result names the one that finished the run.
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [c.split()[-1] for c in run["commands"]] == ["100000", str(step + 3)]
    assert result["command"] == run["commands"][-1] and result["stopped"] == "--steps"


def test_groovae_run_logs_and_cards_no_perplexity(tmp_path):
    """A VAE's loss is recon + beta * KL per example: exp(loss) is no perplexity, and its slice
    line names the metrics it has (hit accuracy), not an "accuracy nan"."""
    data = drum_folder(tmp_path / "groove", files=12, bars=16)
    run_dir = tmp_path / "run"
    result = train("groovae_humanize_2bar", data, run_dir, "enc_units=8,dec_units=8:8,z_size=4,batch_size=4,"
                   "log_every=1,eval_every=2,image_every=0,eval_examples=8", steps=2, cache_root=tmp_path / "cache",
                   quiet=True)
    assert "perplexity" not in result["eval"] and result["stopped"] == "--steps"
    assert "loss" in _tags(run_dir / "tb" / "train") and "perplexity" not in _tags(run_dir / "tb" / "train")
    card = (export(run_dir, tmp_path / "bundles" / "tiny_groove") / "MODEL_CARD.md").read_text()
    assert "| loss (recon + beta * KL above free bits, per example) |" in card
    assert "perplexity" not in card and "nan" not in card and "NLL" not in card
    assert re.search(r"exported model scores loss [0-9.]+, hit accuracy [0-9.]+\.", card)
    assert "2 steps (stopped by --steps)" in card


def test_stop_reasons_and_trainer_settings(tmp_path):
    """result.json says what ended the run; --hparams takes trainer settings, refuses typos."""
    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    # With learning rate 0 the eval loss never improves, so patience 1 stops at the second eval.
    stopped = train("melody_rnn", data, tmp_path / "early", TINY + ",learning_rate=0.0,eval_every=1,early_stop_patience=1",
                    steps=50, cache_root=tmp_path / "cache", quiet=True)
    assert (stopped["stopped"], stopped["steps"]) == ("early_stopping", 2)
    full = train("melody_rnn", data, tmp_path / "full", TINY + ",max_steps=3", cache_root=tmp_path / "cache", quiet=True)
    assert (full["stopped"], full["steps"]) == ("max_steps", 3)
    with pytest.raises(ValueError, match=r"bad hparam 'evals=1'.*eval_examples.*log_every.*units"):
        train("melody_rnn", data, tmp_path / "other", "evals=1", cache_root=tmp_path / "cache", quiet=True)


def _scalars(folder: Path, tag: str) -> dict[int, float]:
    import tensorflow as tf

    values = {}
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                if v.tag == tag:
                    values[event.step] = float(tf.make_ndarray(v.tensor))
    return values


def test_learning_rate_decay_and_extended_runs(tmp_path):
    """The decay follows its step-indexed schedule whether or not the run was resumed on the
    way, and a finished run goes on when max_steps is raised (how a bundle is annealed)."""
    from bridge.train.trainer import learning_rate_at

    hp = {"learning_rate": 1e-3, "lr_decay_start": 2, "lr_decay_rate": 0.5, "min_learning_rate": 1e-4}
    assert [learning_rate_at(hp, s) for s in (0, 1, 2, 3)] == pytest.approx([1e-3, 1e-3, 1e-3, 5.5e-4])
    assert learning_rate_at(hp, 100) == pytest.approx(1e-4)
    assert learning_rate_at({**hp, "lr_decay_rate": 1.0}, 100) == 1e-3

    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    decay = TINY + ",dropout=0.0,log_every=1,learning_rate=0.001,lr_decay_start=2,lr_decay_rate=0.5,min_learning_rate=0.0001"
    cache = tmp_path / "cache"
    train("melody_rnn", data, tmp_path / "straight", decay, steps=5, seed=1, cache_root=cache, quiet=True)
    train("melody_rnn", data, tmp_path / "resumed", decay + ",max_steps=3", seed=1, cache_root=cache, quiet=True)
    extended = train("melody_rnn", data, tmp_path / "resumed", decay + ",max_steps=5", seed=1, cache_root=cache,
                     quiet=True)
    assert (extended["steps"], extended["stopped"]) == (5, "max_steps")
    straight, _, _ = checkpoint.load(tmp_path / "straight" / "checkpoints" / "ckpt-5.npz")
    resumed, _, _ = checkpoint.load(tmp_path / "resumed" / "checkpoints" / "ckpt-5.npz")
    assert all((a == b).all() for a, b in zip(straight, resumed))
    # Logged after each step: the rate that step trained with.
    logged = _scalars(tmp_path / "resumed" / "tb" / "train", "learning_rate")
    assert [logged[s] for s in range(1, 6)] == pytest.approx([1e-3, 1e-3, 1e-3, 5.5e-4, 3.25e-4], rel=1e-5)
    # Other settings still may not change under a run.
    with pytest.raises(ValueError, match="another hparams"):
        train("melody_rnn", data, tmp_path / "resumed", decay + ",lr_decay_rate=0.9,max_steps=6", seed=1,
              cache_root=cache, quiet=True)


def test_sharded_cache_trains_the_same_weights(tmp_path):
    """Training streams a sharded cache (built by `dataset --shard-files`); with no more shards
    than shuffle_shards it sees the one-file cache's batches, so it trains the same weights."""
    from bridge.data import pipeline
    from bridge.models.configs import CONFIGS

    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    sharded = pipeline.build(CONFIGS["melody_rnn"], data, tmp_path / "sharded", quiet=True, shard_files=3)
    assert not (sharded / "train.npz").exists()
    for name in ("single", "sharded"):
        train("melody_rnn", data, tmp_path / name / "run", TINY, steps=5, seed=2, cache_root=tmp_path / name, quiet=True)
    assert json.loads((tmp_path / "sharded" / "run" / "run.json").read_text())["cache"] == str(sharded.resolve())
    single, streamed = (checkpoint.load(tmp_path / name / "run" / "checkpoints" / "ckpt-5.npz")[0]
                        for name in ("single", "sharded"))
    assert all((a == b).all() for a, b in zip(single, streamed))
    results = [json.loads((tmp_path / name / "run" / "result.json").read_text()) for name in ("single", "sharded")]
    assert results[0]["eval"] == results[1]["eval"] and results[0]["baselines"] == results[1]["baselines"]
