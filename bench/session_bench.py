"""Pool overhead per session: the same scripted task through the pool and bare `claude -p`."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from agent_pool.testing import (
    Conversation,
    Script,
    ScriptedModelServer,
    Turn,
    find_claude_cli,
    hermetic_claude_env,
)
from bench.pool import bench_pool

PROMPT = "Benchmark task: reply with one word."


def _script() -> Script:
    return Script([Conversation(match="Benchmark task", turns=[Turn.text("done")])])


def pool_overhead(samples: int) -> dict[str, Any]:
    claude = find_claude_cli()
    if claude is None:
        raise RuntimeError("the pinned Claude Code CLI is missing: run `make claude-cli`")
    with ScriptedModelServer(_script()) as server, tempfile.TemporaryDirectory() as scratch:
        env = hermetic_claude_env(server.base_url, Path(scratch) / "config", base=os.environ)
        bare = []
        for _ in range(samples):
            began = time.perf_counter()
            subprocess.run(
                [
                    str(claude),
                    "-p",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--model",
                    "sonnet",
                ],
                input=PROMPT.encode(),
                env=env,
                cwd=scratch,
                capture_output=True,
                check=True,
            )
            bare.append(time.perf_counter() - began)
        pooled = []
        with bench_pool() as pool:
            pool.env.update(env)
            pool.env["AGENT_POOL_CLAUDE_BIN"] = str(claude)
            pool.start()
            for n in range(samples):
                began = time.perf_counter()
                pool.post("backend", PROMPT)
                pool.wait_completed(n + 1)
                pooled.append(time.perf_counter() - began)
    bare_s, pooled_s = statistics.median(bare), statistics.median(pooled)
    return {
        "samples": samples,
        "bare_claude_s": bare_s,
        "through_pool_s": pooled_s,
        "overhead_s": pooled_s - bare_s,
    }
