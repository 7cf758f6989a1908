"""`make bench`: run every bench/bench_*.py, write bench/results.json, print one table.

`--smoke` runs each at tiny sizes (seconds, not minutes): the template's tests use it to prove
that every benchmark still builds what it measures and writes its figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from harness import table

BENCH = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks (all by default) in one invocation."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("names", nargs="*", help="e.g. stats validate pipeline serving")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes (BENCH_SMOKE=1 for the benchmarks): checks that each still runs and "
        "writes its figures; the figures mean nothing",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        os.environ["BENCH_SMOKE"] = "1"
    # team last: it runs whole installs and workflows (tens of minutes), so every other
    # figure is printed before it
    available = sorted(
        (p.stem.removeprefix("bench_") for p in BENCH.glob("bench_*.py")),
        key=lambda name: (name == "team", name),
    )
    unknown = set(args.names) - set(available)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {available}")
    results: dict[str, list] = {}
    for name in args.names or available:
        module = importlib.import_module(f"bench_{name}")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            figures = module.run(Path(tmp), args.smoke)
        print(f"\n## {name} ({time.perf_counter() - start:.0f} s)\n{table(figures)}", flush=True)
        results[name] = figures
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": _cpus()}
    report = {"machine": machine, "smoke": args.smoke, "results": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
