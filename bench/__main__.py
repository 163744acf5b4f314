"""Run the benchmarks, print a table and write JSON to bench/results/.

python -m bench            # everything (several minutes)
python -m bench --quick    # smaller counts, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import daemon_bench, session_bench, tools_bench


def median_of(runs: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `measure` several times and keep the median of every numeric figure."""
    results = [measure() for _ in range(runs)]
    merged: dict[str, Any] = {}
    for key in results[0]:
        values = [result[key] for result in results]
        merged[key] = statistics.median(values) if isinstance(values[0], float) else values[0]
    merged["runs"] = runs
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small counts, one run each")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    big = 2_000 if args.quick else 10_000
    figures: dict[str, dict[str, Any]] = {}
    plan: list[tuple[str, Callable[[], dict[str, Any]], int]] = [
        (
            "dispatch_latency",
            lambda: daemon_bench.dispatch_latency(40 if args.quick else 100),
            runs,
        ),
        ("burst_200_running_pool", lambda: daemon_bench.burst_into_running_pool(200), runs),
        ("queued_1000", lambda: daemon_bench.queued_at_start(1_000), runs),
        (f"queued_{big}", lambda: daemon_bench.queued_at_start(big), 1),
        ("idle", lambda: daemon_bench.idle(10.0 if args.quick else 60.0), 1),
        ("status_latency", lambda: daemon_bench.status_latency(10 if args.quick else 30), runs),
        ("tools_ready", lambda: tools_bench.tools_ready(10 if args.quick else 20), runs),
        ("session_overhead", lambda: session_bench.pool_overhead(5 if args.quick else 10), runs),
    ]
    for name, measure, times in plan:
        began = time.perf_counter()
        figures[name] = median_of(times, measure)
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in figures[name].items())
        print(f"{name:<24} {shown}  [{time.perf_counter() - began:.0f} s]", flush=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "system": platform.platform(),
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        },
        "figures": figures,
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"daemon-{report['when']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
