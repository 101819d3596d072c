"""magenta.js under node, for the export tests and bench/bench_magentajs.py.

`ensure_magenta_js` installs @magenta/music once into <repo>/.cache/mmjs (git-ignored) with
npm; `serve` shares a folder over loopback HTTP (magenta.js loads checkpoints by URL);
`run_jobs` runs harness.js on a list of jobs. Also random-weight bundles of the layouts that
export, so the tests and the bench share one definition of them.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from bridge.bundle import save_bundle

VERSION = "1.23.1"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "mmjs"
PACKAGE = CACHE / "node_modules" / "@magenta" / "music"
HARNESS = Path(__file__).with_name("harness.js")


class Unavailable(Exception):
    """node, npm or the package cannot be had here; the message says which, for a skip reason."""


def ensure_magenta_js(install_timeout: float = 600) -> Path:
    """The installed @magenta/music folder, installing it on first use."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not on PATH")
    if _installed_version() == VERSION:
        return PACKAGE
    try:
        done = subprocess.run(["npm", "install", "--prefix", str(CACHE), f"@magenta/music@{VERSION}",
                               "--no-audit", "--no-fund"], capture_output=True, text=True, timeout=install_timeout)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"npm install @magenta/music@{VERSION} took over {install_timeout:.0f} s") from None
    if done.returncode or _installed_version() != VERSION:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"npm install @magenta/music@{VERSION} failed (no network?): {tail}")
    return PACKAGE


def _installed_version() -> str | None:
    manifest = PACKAGE / "package.json"
    return json.loads(manifest.read_text()).get("version") if manifest.is_file() else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """The base URL of `folder` served on 127.0.0.1 (a free port) for the duration."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_jobs(package: Path, jobs: list[dict], timeout: float = 300) -> list[dict]:
    """Results of harness.js for `jobs`, in order; a node failure raises with its error text."""
    with tempfile.TemporaryDirectory(prefix="mmjs-") as tmp:
        jobs_file, results_file = Path(tmp) / "jobs.json", Path(tmp) / "results.json"
        jobs_file.write_text(json.dumps(jobs))
        done = subprocess.run(["node", str(HARNESS), str(package), str(jobs_file), str(results_file)],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"magenta.js harness failed: {done.stderr.strip()[-2000:]}")
        return json.loads(results_file.read_text())


# --- random-weight bundles of the layouts that export -----------------------------------------

def _lstm(rng, prefix: str, inputs: int, units: int, scale: float) -> dict[str, np.ndarray]:
    w = lambda *shape: (rng.standard_normal(shape) * scale).astype(np.float32)  # noqa: E731
    return {f"{prefix}/kernel": w(inputs, 4 * units), f"{prefix}/recurrent_kernel": w(units, 4 * units),
            f"{prefix}/bias": w(4 * units)}


def events_bundle(folder: Path, converter: str, units: int, layers: int, seed: int = 0, scale: float = 1.0) -> Path:
    """An events_rnn bundle without lookback or counters (what magenta.js's MusicRNN can run).

    Weights of scale 1 keep a greedy continuation moving between events; smaller random
    weights tend to settle on one event, which would compare too little."""
    from bridge.models.events_rnn import event_features

    converter_args = {"min_pitch": 48, "max_pitch": 83} if converter == "melody" else {}
    hparams = {"layers": layers, "units": units, "lookback": 0, "counter_bits": 0}
    features = event_features(converter, converter_args, hparams)
    rng = np.random.default_rng(seed)
    weights, width = {}, features.size
    for k in range(layers):
        weights.update(_lstm(rng, f"lstm_{k}", width, units, scale))
        width = units
    classes = features.encoding.num_classes
    weights["output/kernel"] = (rng.standard_normal((units, classes)) * 2 * scale).astype(np.float32)
    weights["output/bias"] = (rng.standard_normal(classes) * scale).astype(np.float32)
    kind = "melody" if converter == "melody" else "drums"
    config = {"name": folder.name, "model_class": "events_rnn", "kind": kind, "tools": ["continue"],
              "hparams": hparams, "converter": converter, "converter_args": converter_args}
    return save_bundle(folder, config, weights, f"# {folder.name}\n\nRandom weights for the magenta.js tests.\n")


def vae_bundle(folder: Path, kind: str, enc_units: int, dec_units: list[int], z_size: int, bars: int = 2,
               seed: int = 0, scale: float = 0.4) -> Path:
    """A music_vae bundle (melody 48-95 or drums) with random weights, in the serving layout."""
    from bridge.models.music_vae import VAEHparams, input_table

    hparams = {"bars": bars, "steps_per_bar": 16, "min_pitch": 48, "max_pitch": 95, "enc_units": enc_units,
               "dec_units": dec_units, "z_size": z_size}
    hp = VAEHparams.from_config(kind, hparams)
    width = input_table(kind, hp.num_classes).shape[1]
    rng = np.random.default_rng(seed)
    w = lambda *shape: (rng.standard_normal(shape) * scale).astype(np.float32)  # noqa: E731
    weights = {**_lstm(rng, "encoder/fw", width, enc_units, scale), **_lstm(rng, "encoder/bw", width, enc_units, scale)}
    inputs = width + z_size
    for k, units in enumerate(dec_units):
        weights.update(_lstm(rng, f"decoder/lstm_{k}", inputs, units, scale))
        inputs = units
    weights.update({"encoder/mu/kernel": w(2 * enc_units, z_size), "encoder/mu/bias": w(z_size),
                    "encoder/sigma/kernel": w(2 * enc_units, z_size), "encoder/sigma/bias": w(z_size),
                    "decoder/z_to_state/kernel": w(z_size, 2 * sum(dec_units)),
                    "decoder/z_to_state/bias": w(2 * sum(dec_units)),
                    "decoder/out/kernel": w(dec_units[-1], hp.num_classes) * 4, "decoder/out/bias": w(hp.num_classes)})
    config = {"name": folder.name, "model_class": "music_vae", "kind": kind, "tools": ["generate", "interpolate"],
              "hparams": hparams, "converter": f"vae_{kind}", "converter_args": {"bars": bars}}
    return save_bundle(folder, config, weights, f"# {folder.name}\n\nRandom weights for the magenta.js tests.\n")
