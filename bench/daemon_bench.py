"""Daemon figures against QUALITY.md: latency, throughput, scaling, idle cost, status."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from bench.pool import EXPERTS, bench_pool


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def dispatch_latency(samples: int) -> dict[str, Any]:
    """Mail renamed into postoffice/ -> the claude process runs, in an idle pool."""
    spawn_ms: list[float] = []
    process_ms: list[float] = []
    with bench_pool(record=True) as pool:
        pool.start()
        for n in range(samples):
            expert = EXPERTS[n % len(EXPERTS)]
            before = len(pool.runs())
            posted = time.time()
            task_id = pool.post(expert)
            while len(pool.runs()) == before:
                time.sleep(0.001)
            started = pool.started_at(task_id)
            run = pool.runs()[-1]
            process_ms.append((run["started"] - posted) * 1000)
            if started is not None:
                spawn_ms.append((started - posted) * 1000)
            pool.wait_completed(n + 1)
    return {
        "samples": samples,
        "spawn_p50_ms": statistics.median(spawn_ms),
        "spawn_p99_ms": percentile(spawn_ms, 0.99),
        "process_p50_ms": statistics.median(process_ms),
        "process_p99_ms": percentile(process_ms, 0.99),
    }


def burst_into_running_pool(count: int) -> dict[str, Any]:
    with bench_pool() as pool:
        daemon = pool.start()
        cpu_before = sum(daemon.cpu_times()[:2])
        began = time.perf_counter()
        for n in range(count):
            pool.post(EXPERTS[n % len(EXPERTS)])
        pool.wait_completed(count)
        wall = time.perf_counter() - began
        cpu = sum(daemon.cpu_times()[:2]) - cpu_before
    return {"tasks": count, "wall_s": wall, "tasks_per_s": count / wall, "daemon_cpu_s": cpu}


def queued_at_start(count: int) -> dict[str, Any]:
    with bench_pool() as pool:
        for n in range(count):
            pool.post(EXPERTS[n % len(EXPERTS)])
        began = time.perf_counter()
        daemon = pool.start()
        pool.wait_completed(count, timeout=3600)
        wall = time.perf_counter() - began
        cpu = sum(daemon.cpu_times()[:2])
        peak_kb = _peak_rss_kb(daemon.pid)
    return {
        "tasks": count,
        "wall_s": wall,
        "daemon_cpu_s": cpu,
        "daemon_cpu_ms_per_task": cpu * 1000 / count,
        "peak_rss_mb": peak_kb / 1024,
    }


def idle(seconds: float) -> dict[str, Any]:
    with bench_pool() as pool:
        daemon = pool.start()
        time.sleep(1.0)  # let start-up settle before measuring rest
        # The daemon's children at rest: the tools process (sessions are none).
        children = daemon.children()
        cpu_before = sum(daemon.cpu_times()[:2])
        children_before = sum(sum(child.cpu_times()[:2]) for child in children)
        time.sleep(seconds)
        cpu = sum(daemon.cpu_times()[:2]) - cpu_before
        children_cpu = sum(sum(child.cpu_times()[:2]) for child in children) - children_before
        rss = daemon.memory_info().rss
        children_rss = sum(child.memory_info().rss for child in children)
    return {
        "seconds": seconds,
        "cpu_percent": 100 * cpu / seconds,
        "rss_mb": rss / 2**20,
        "tools_process_cpu_percent": 100 * children_cpu / seconds,
        "tools_process_rss_mb": children_rss / 2**20,
    }


def status_latency(samples: int) -> dict[str, Any]:
    with bench_pool() as pool:
        pool.start()
        for n in range(200):
            pool.post(EXPERTS[n % len(EXPERTS)])
        pool.wait_completed(200)
        walls = []
        for _ in range(samples):
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "agent_pool", "--pool", str(pool.layout.root), "status"],
                env=pool.env,
                check=True,
                capture_output=True,
            )
            walls.append((time.perf_counter() - began) * 1000)
    return {"samples": samples, "p50_ms": statistics.median(walls), "max_ms": max(walls)}


def _peak_rss_kb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:  # noqa: PTH123
        for line in status:
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return 0.0
