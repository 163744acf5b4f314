"""`make demo`: a scratch pool, end to end, with nothing to set up and no account.

For now it shows the foundation: create a pool, submit work, and check it with doctor.
The full demo (real Claude Code against the scripted model) replaces this as the
session runner lands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    print(f"$ agent-pool {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "agent_pool", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = (result.stdout + result.stderr).rstrip()
    if output:
        print("  " + output.replace("\n", "\n  "), flush=True)
    return result.stdout.strip()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="agent-pool-demo-") as scratch:
        project = Path(scratch) / "shop"
        project.mkdir()
        env = dict(os.environ, AGENT_POOL_HOME=str(Path(scratch) / "home"))
        run(["init", "--expert", "backend", "--expert", "frontend"], project, env)
        first = run(["submit", "--to", "backend", "Add a /health endpoint"], project, env)
        run(
            ["submit", "--to", "frontend", "--depends-on", first, "Show API health in the footer"],
            project,
            env,
        )
        run(["submit", "--to", "backend", "--type", "question", "Which port?"], project, env)
        mail = sorted(p.name for p in (project / ".agent-pool" / "postoffice").glob("*.md"))
        print(f"postoffice now holds {len(mail)} mail files: {', '.join(mail)}")
        run(["doctor"], project, env)


if __name__ == "__main__":
    main()
