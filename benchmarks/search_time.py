"""The default search's time, as a user waits for it: `actlab search` in a fresh process,
start-up and report included.

    python -m benchmarks.search_time [--preset default] [--keep DIR]

Issue 29's target: the default search (1,000 candidates, the known activations racing
beside them, five rungs, the finalists confirmed with the controls and their nearest
built-ins on 10 fresh seeds on the MLP, and the transfer to unseen tasks on 8 more) finishes
within 30 minutes on this 2-core machine. Printed: wall time, the load average before it,
the CPU time the search used and other processes took, and the share the hypervisor stole
(benchmarks/tutorial.py's measurements); then the search's own account of each rung's time
(search.json) and each confirmation's and the transfer's, from their runs' manifests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from benchmarks.tutorial import actlab_command, load_average, run_timed

TARGET_S = 30 * 60.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--keep", type=Path, help="keep the search directory here")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="actlab-search-"))
    out = root / f"search-{args.preset}"
    shutil.rmtree(out, ignore_errors=True)
    print(f"load average before: {load_average():.2f}", flush=True)
    command = [*actlab_command(), "search", "--preset", args.preset, "--out", str(out)]
    timed = run_timed(f"search --preset {args.preset}", command)
    manifest = json.loads((out / "search.json").read_text())
    funnel = manifest.get("funnel", {})
    print(f"  selection before training: {funnel.get('seconds', float('nan')):.1f} s")
    for rung, seconds in sorted(
        manifest.get("rung_seconds", {}).items(), key=lambda kv: int(kv[0])
    ):
        print(f"  rung {int(rung) + 1}: {seconds:.1f} s")
    runs = sorted((out / "confirm").glob("*/manifest.json")) + [out / "transfer" / "manifest.json"]
    for manifest_path in runs:
        if manifest_path.is_file():
            run = json.loads(manifest_path.read_text())
            took = elapsed(run["started"], run["finished"])
            print(f"  {manifest_path.parent.relative_to(out)}: {took:.1f} s")
    verdict = "met" if timed.wall <= TARGET_S else "NOT met"
    print(
        f"\nsearch --preset {args.preset}: {timed.wall / 60:.1f} min (target <= 30 min: {verdict})"
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


def elapsed(started: str, finished: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


if __name__ == "__main__":
    main()
