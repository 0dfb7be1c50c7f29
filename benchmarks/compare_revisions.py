"""Compare the recorder's per-call cost of this checkout with another git revision.

    python benchmarks/compare_revisions.py HEAD~1            # 8 alternating pairs
    python benchmarks/compare_revisions.py main --pairs 12

Each side runs ``bench_recorder`` of its own ``benchmarks/run.py`` against its own
package, in a fresh subprocess (``PYTHONPATH`` is its tree), alternating old/new so both
see the same machine load.  Printed: per base class, the median of the per-pair ratios
new/old of the time of one ``task.apply()`` while recording (thread CPU time), and of the
time recording adds to it.  A ratio of 1.02 means "2 % slower than the old revision".
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

ROOT = Path(__file__).resolve().parent.parent
_CHILD = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/benchmarks"]
from run import bench_recorder
print(json.dumps(bench_recorder(int(sys.argv[2]), int(sys.argv[3]))))
"""


def measure(tree: Path, rounds: int, calls: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), str(rounds), str(calls)],
        env=env, capture_output=True, text=True, check=True, cwd=tree,
    )  # fmt: skip
    result: dict[str, dict[str, float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare with (e.g. HEAD~1)")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="celerybase-rev-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                        args.revision], check=True, capture_output=True)  # fmt: skip
        try:
            ratios: dict[str, dict[str, list[float]]] = {}
            for i in range(args.pairs):
                order = [(old, "old"), (ROOT, "new")] if i % 2 else [(ROOT, "new"), (old, "old")]
                got = {side: measure(tree, args.rounds, args.calls) for tree, side in order}
                for base, new in got["new"].items():
                    before = got["old"][base]
                    per = ratios.setdefault(base, {"on": [], "added": []})
                    per["on"].append(new["on_us"] / before["on_us"])
                    per["added"].append(new["added_us"] / before["added_us"])
                print(f"pair {i + 1}/{args.pairs}: "
                      + ", ".join(f"{b} on {got['new'][b]['on_us']:.1f} vs "
                                  f"{got['old'][b]['on_us']:.1f} us" for b in got["new"]),
                      file=sys.stderr)  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False, capture_output=True)  # fmt: skip
    summary = {
        base: {
            "recording_call_new_over_old": round(statistics.median(r["on"]), 4),
            "added_by_recording_new_over_old": round(statistics.median(r["added"]), 4),
        }
        for base, r in ratios.items()
    }
    print(json.dumps({"revision": args.revision, "pairs": args.pairs, "ratios": summary},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
