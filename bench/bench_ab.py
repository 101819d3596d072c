"""What a change does to the time the server adds: bench_server's latency measure, run in turns
on a base revision and on the working tree.

    .venv/bin/python bench/bench_ab.py [--base HEAD] [--rounds 3] [--runs 30] [--case "generate drums default" ...]

On this 2-core VM the same code reads up to 0.5 ms apart in `bench_server` runs a minute apart
(generate drums default: 1.40, 1.90 and 1.54 ms added in three rounds of one code), more than
most changes to the server move it. So the base revision is checked out into a temporary git
worktree, and the two sides run in turns, round by round (base, working tree, base, ...), each in
a process of its own: the base's `bridge` (client and server alike) first on PYTHONPATH for the
one, the working tree's for the other; this file's benchmark code and the working tree's bundles
for both, so that only the code differs. A change is believed when it shows in every round, not
in the medians alone. The base must have `bridge.jobs.STAGES` (2026-12-03 on). Printed: per case
and side, each round's p50 of the added time (the round trip less the tool's own time in the
server, as bench_server pairs them), its median over the rounds, and the median of each stage.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUNDLES = REPO / "bundles"
ADDED = "added"


def measure(runs: int, labels: list[str], bundles: Path) -> dict:
    """In this process: where its `bridge` came from, and per case the p50 of the added time and
    of each stage."""
    import bench_server

    import bridge

    measured, _, _, _ = bench_server.latencies(bundles, runs, runs, labels)
    return {"bridge": str(Path(bridge.__file__).parent),
            "cases": {item.case.label: {ADDED: statistics.median(item.added_ms),
                                        **{name: statistics.median(ms) for name, ms in item.stage_ms.items()}}
                      for item in measured}}


def side(tree: Path, runs: int, labels: list[str], bundles: Path) -> dict[str, dict[str, float]]:
    """`measure` in a child process whose `bridge` is the one in `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--child", "--runs", str(runs), "--bundles", str(bundles),
                          *(arg for label in labels for arg in ("--case", label))],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the side at {tree} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.splitlines()[-1])
    if Path(result["bridge"]) != tree / "bridge":  # the side measured must be the side named
        raise SystemExit(f"the side at {tree} imported bridge from {result['bridge']}")
    return result["cases"]


def table(rounds: dict[str, list[dict[str, dict[str, float]]]]) -> str:
    """Per case measured (a case whose model is not installed is not), each side's rows."""
    first = rounds["base"][0]
    names = [name for name in next(iter(first.values())) if name != ADDED]
    lines = [f"{'case':45s} {'side':5s} {'added p50 ms, round by round':>30s} {'median':>7s}  "
             + "  ".join(f"{name:>10s}" for name in names)]
    for label in first:
        medians = {}
        for name, results in rounds.items():
            per_round = [result[label][ADDED] for result in results]
            medians[name] = statistics.median(per_round)
            stages = "  ".join(f"{statistics.median([r[label][stage] for r in results]):>{max(10, len(stage))}.2f}"
                               for stage in names)
            lines.append(f"{label if name == 'base' else '':45s} {name:5s} "
                         f"{' '.join(f'{v:.2f}' for v in per_round):>30s} {medians[name]:7.2f}  {stages}")
        lines.append(f"{'':45s} {'work - base':>36s} {medians['work'] - medians['base']:+7.2f}")
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    defaults = [case.label for case in common.cases() if case.setting == "default"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30, help="timed requests per case, each round and side")
    parser.add_argument("--case", action="append", dest="cases", metavar="LABEL",
                        help="a case as bench_server labels it (default: every case at default settings)")
    parser.add_argument("--bundles", type=Path, default=BUNDLES)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    labels = args.cases or defaults
    unknown = set(labels) - {case.label for case in common.cases()}
    if unknown:
        parser.error(f"no such case: {', '.join(sorted(unknown))}")
    if args.child:
        print(json.dumps(measure(args.runs, labels, args.bundles)))
        return
    rounds: dict[str, list] = {"base": [], "work": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        made = subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=REPO,
                              capture_output=True, text=True)
        if made.returncode:
            raise SystemExit(f"cannot check out {args.base}: {made.stderr.strip()}")
        try:
            for n in range(args.rounds):
                for name, tree in (("base", base), ("work", REPO)):
                    rounds[name].append(side(tree, args.runs, labels, args.bundles))
                print(f"round {n + 1} of {args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
    print(f"base {args.base} against the working tree; {args.rounds} rounds of {args.runs} requests a case "
          "and side, in turns; times in ms")
    print(table(rounds))


if __name__ == "__main__":
    main()
