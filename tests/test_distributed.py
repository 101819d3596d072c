"""Training with tf.distribute: two replicas on one machine (MirroredStrategy over two logical
CPU devices), and two worker processes on loopback (MultiWorkerMirroredStrategy from
TF_CONFIG) killed mid-run and restarted, resuming from the chief's checkpoint."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic_midi import drum_folder, melody_folder

from bridge.data import pipeline
from bridge.models.configs import CONFIGS

pytest.importorskip("tensorflow")
from bridge.train import checkpoint  # noqa: E402
from bridge.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}


def _weights(path: Path) -> list[np.ndarray]:
    return checkpoint.load(path)[0]


def test_mirrored_replicas_train_what_one_device_trains(tmp_path):
    """Two replicas, each on half of every batch, with gradient clipping on: the weights one
    device trains (the global batch, its clipped gradient) up to float rounding."""
    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    hp = "units=16,batch_size=8,eval_every=5,checkpoint_every=5,log_every=1,eval_examples=16,dropout=0.0,clip_norm=0.01"
    script = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from bridge.train.trainer import train\n"
        f"train('melody_rnn', {str(data)!r}, {str(tmp_path / 'two')!r}, {hp!r}, steps=5, seed=3,\n"
        f"      cache_root={str(tmp_path / 'cache')!r}, strategy='mirrored')\n")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **QUIET}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training on 2 replicas (strategy mirrored, chief)" in done.stdout
    train("melody_rnn", data, tmp_path / "one", hp, steps=5, seed=3, cache_root=tmp_path / "cache", quiet=True,
          strategy="none")
    two, one = (_weights(tmp_path / run / "checkpoints" / "ckpt-5.npz") for run in ("two", "one"))
    assert max(float(np.abs(a - b).max()) for a, b in zip(one, two)) < 1e-5
    # The clipping binds (without it one device trains other weights), so the replicas' step
    # clipped the summed gradient, not each replica's half.
    train("melody_rnn", data, tmp_path / "unclipped", hp.replace("clip_norm=0.01", "clip_norm=0.0"), steps=5, seed=3,
          cache_root=tmp_path / "cache", quiet=True, strategy="none")
    unclipped = _weights(tmp_path / "unclipped" / "checkpoints" / "ckpt-5.npz")
    assert max(float(np.abs(a - b).max()) for a, b in zip(one, unclipped)) > 1e-4


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(args: list[str], logs: Path, tag: str) -> list[subprocess.Popen]:
    """Two worker processes of one cluster on loopback ports, each told its place by TF_CONFIG."""
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        log = open(logs / f"{tag}-{index}.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-c", "import sys; from bridge.cli import main; sys.exit(main())", *args],
            env={**os.environ, **QUIET, "TF_CONFIG": json.dumps(config)}, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_workers_killed_and_restarted_resume_from_the_checkpoint(tmp_path):
    data = drum_folder(tmp_path / "groove", files=12, bars=16)
    # On a cluster the cache is built first (`dataset`), then every worker reads it.
    pipeline.build(CONFIGS["drums_rnn"], data, tmp_path / "cache", quiet=True)
    run_dir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    hp = "units=16,batch_size=4,checkpoint_every=2,eval_every=1000,log_every=1,dropout=0.0"
    args = ["train", "drums_rnn", "--data", str(data), "--run-dir", str(run_dir), "--cache", str(tmp_path / "cache"),
            "--hparams", hp, "--seed", "5"]
    procs = _workers(args + ["--steps", "100000"], tmp_path, "first")
    try:
        deadline = time.monotonic() + 180
        while checkpoint.latest(ckpts) is None and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        assert checkpoint.latest(ckpts) is not None, (tmp_path / "first-0.log").read_text()[-3000:]
        procs[1].kill()  # a machine dies
        procs[1].wait()
        # The survivor's next all-reduce fails, so it stops too; a cluster manager restarts both.
        survivor = procs[0].wait(timeout=120)
    finally:
        _stop(procs)
    assert survivor != 0 and "Collective ops is aborted" in (tmp_path / "first-0.log").read_text()
    latest = checkpoint.latest(ckpts)
    weights, _, meta = checkpoint.load(latest)
    step = meta["step"]

    procs = _workers(args + ["--steps", str(step + 3)], tmp_path, "again")
    try:
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        _stop(procs)
    logs = [(tmp_path / f"again-{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    for index, log in enumerate(logs):
        assert f"resumed from step {step} ({latest.name}, weights {checkpoint.fingerprint(weights)})" in log
        assert f"training on 2 replicas (strategy multi_worker, {'chief' if index == 0 else 'worker'})" in log
        assert [int(line.split()[1]) for line in log.splitlines() if line.startswith("step ")] == \
            [step + 1, step + 2, step + 3]
    result = json.loads((run_dir / "result.json").read_text())  # written by the chief alone
    assert result["steps"] == step + 3 and result["stopped"] == "--steps"
    assert "result " in logs[0] and "result " not in logs[1]

    # The killed and resumed two-worker run trained what one uninterrupted process trains.
    train("drums_rnn", data, tmp_path / "one", hp, steps=step + 3, seed=5, cache_root=tmp_path / "cache", quiet=True,
          strategy="none")
    one = _weights(tmp_path / "one" / "checkpoints" / f"ckpt-{step + 3}.npz")
    two = _weights(ckpts / f"ckpt-{step + 3}.npz")
    assert max(float(np.abs(a - b).max()) for a, b in zip(one, two)) < 1e-5
