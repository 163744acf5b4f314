"""`agent-pool demo`: the README's main job, run for real."""

from __future__ import annotations

import re

from agent_pool.testing import find_claude_cli
from tests.conftest import CliEnv


def test_the_demo_runs_a_pool_end_to_end(cli: CliEnv) -> None:
    claude = find_claude_cli()
    assert claude is not None, "the pinned Claude Code CLI is missing: run `make test`"
    cli.env["AGENT_POOL_CLAUDE_BIN"] = str(claude)
    result = cli.run("demo")
    assert result.code == 0, result.out + result.err
    out = result.out
    assert "answer to 'Which port does the API listen on?': The API listens on port 8080" in out
    assert "api/health.py: def health()" in out
    assert "web/footer.html: <footer>" in out
    assert len(re.findall(r": completed \(\$\d+\.\d{4}\)", out)) == 3
    assert "backend reported on" in out
    assert "GET /health lives in api/health.py" in out  # state.md written by the session
    assert "agent-pool tool send_response" in out
    # The dependant started only after its dependency completed.
    lines = out.splitlines()
    health_done = next(
        i for i, line in enumerate(lines) if "api/health.py" in line and "Write" in line
    )
    footer_start = next(i for i, line in enumerate(lines) if "frontend started" in line)
    assert footer_start > health_done
    assert re.search(r"^cost: \$\d+\.\d{4} ", out, re.MULTILINE)


def test_the_demo_says_how_to_get_claude_when_it_is_missing(cli: CliEnv) -> None:
    cli.env["AGENT_POOL_CLAUDE_BIN"] = "/nonexistent/claude"
    cli.env["AGENT_POOL_TEST_CLAUDE"] = "/nonexistent/claude"
    cli.env["PATH"] = "/usr/bin:/bin"
    result = cli.run("demo")
    assert result.code == 1
    assert "make demo" in result.err
    assert "AGENT_POOL_CLAUDE_BIN" in result.err
