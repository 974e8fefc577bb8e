"""The main job's time, as `make run` runs it: `actlab run` (the sound preset) in a fresh
process, start-up and report included, beside the tutorial preset timed the same way.

    python -m benchmarks.main_job [--repeats 1] [--no-tutorial] [--keep DIR]

Issue 27's target: the sound preset finishes in <= 5 minutes on this 2-core machine when it
is quiet. Printed per run: wall time, the load average before it, the CPU time the run used
and other processes took, and the share the hypervisor stole (benchmarks/tutorial.py's
measurements); then actlab's own breakdown (timings.json), and the sound preset's time as a
ratio to the tutorial preset's measured in the same invocation, which a busy or slow day
moves less than either absolute time. A warning says when the machine was not quiet.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from benchmarks.tutorial import (
    QUIET_SHARE,
    actlab_command,
    breakdown,
    load_average,
    median,
    run_timed,
)

TARGET_S = 300.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-tutorial", action="store_true", help="time the sound preset only")
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="actlab-main-job-"))
    root.mkdir(parents=True, exist_ok=True)
    presets = ["sound"] + ([] if args.no_tutorial else ["tutorial"])
    print(f"load average before: {load_average():.2f}", flush=True)
    runs: dict[str, list] = {p: [] for p in presets}
    for i in range(args.repeats):
        for preset in presets:
            out = root / f"{preset}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            command = [*actlab_command(), "run", "--preset", preset, "--out", str(out)]
            runs[preset].append(run_timed(f"{preset} (repeat {i + 1})", command, out))
    for preset, timed in runs.items():
        print(f"\n{preset}: where the time went (medians over {len(timed)} run(s))")
        print("\n".join(breakdown(timed)))
    sound = median([r.wall for r in runs["sound"]])
    verdict = "met" if sound <= TARGET_S else "NOT met"
    print(f"\nsound preset, whole process: {sound:.1f} s (target <= {TARGET_S:.0f} s: {verdict})")
    if "tutorial" in runs:
        tutorial = median([r.wall for r in runs["tutorial"]])
        print(
            f"tutorial preset, whole process: {tutorial:.1f} s; sound / tutorial = "
            f"{sound / tutorial:.2f}"
        )
    busy = [r for rs in runs.values() for r in rs if r.other_cpu > QUIET_SHARE * 2 * r.wall]
    if busy:
        print(
            "warning: other processes used more than "
            f"{QUIET_SHARE:.0%} of the machine during {', '.join(r.label for r in busy)}: "
            "these times are not a quiet machine's"
        )
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
