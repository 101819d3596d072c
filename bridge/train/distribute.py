"""Which tf.distribute strategy a training run uses, and which process writes its files.

  * none: one device, TensorFlow's default strategy (what every run did before; the same
    seed trains the same weights bit for bit);
  * mirrored: `tf.distribute.MirroredStrategy` over this machine's GPUs, or its logical CPU
    devices where it has none: one replica per device, gradients summed in-process;
  * multi_worker: `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine, the
    cluster and this process's place in it read from the `TF_CONFIG` environment variable
    (https://www.tensorflow.org/guide/distributed_training#TF_CONFIG), gradients all-reduced
    between the machines;
  * auto (the default): multi_worker when TF_CONFIG names more than one task, mirrored on a
    machine with several GPUs, else none.
Every replica trains on an equal slice of the same global batch (`batch_size` is the global
batch size), so the data a run sees does not depend on how many replicas it has. Only the
chief (TF_CONFIG's `chief` task, else worker 0) writes run.json, checkpoints, TensorBoard logs
and result.json; every worker restores the newest checkpoint from the same run folder, which
must be on a filesystem they share.
"""
from __future__ import annotations

import json
import os

NAMES = ("auto", "none", "mirrored", "multi_worker")


def tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def task_count(config: dict) -> int:
    return sum(len(hosts) for hosts in config.get("cluster", {}).values())


def is_chief(config: dict | None = None) -> bool:
    """The chief writes the run's files: TF_CONFIG's chief task, else worker 0, else (no
    cluster) this process."""
    config = tf_config() if config is None else config
    task = config.get("task") or {}
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def resolve(name: str, tf) -> str:
    """`auto` made concrete for this process and machine."""
    if name not in NAMES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(NAMES)}")
    if name != "auto":
        return name
    if task_count(tf_config()) > 1:
        return "multi_worker"
    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none"


def make(name: str, tf):
    """The strategy for a resolved name. MultiWorkerMirroredStrategy must be made before any
    other TensorFlow op runs, so trainers call this first."""
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if not tf_config().get("cluster"):
        raise ValueError("strategy multi_worker needs TF_CONFIG with the cluster and this process's task")
    return tf.distribute.MultiWorkerMirroredStrategy()
