"""`python -P -m agent_pool.hooks pre-tool-use|stop --opt=VALUE ...`: what sessions run.

This entry point exists for start-up time: it runs on every write tool call, and
going through the `agent-pool` click CLI would load click and every command module
(about 60 ms more per call). The arguments are parsed by hand for the same reason,
and so that a mistake in them never exits with 2 where 2 would mean "block": a bad
PreToolUse command line blocks (exit 2: no write goes unchecked), a bad Stop command
line does not (exit 1: never keep a session alive by accident).
"""

from __future__ import annotations

import sys
import time

from agent_pool.hooks.run import PRE_TOOL_USE, STOP, run_pre_tool_use, run_stop

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

USAGE = (
    "usage: python -m agent_pool.hooks pre-tool-use --pool-dir=DIR --project-dir=DIR "
    "--session-dir=DIR [--owns=GLOB]... | stop --session-dir=DIR"
)
_OPTIONS = {
    PRE_TOOL_USE: ("--pool-dir", "--project-dir", "--session-dir", "--owns"),
    STOP: ("--session-dir",),
}
_REPEATABLE = frozenset({"--owns"})


class HookUsageError(Exception):
    """The hook's own command line is wrong (a bug in the settings that run it)."""


def parse_args(args: Sequence[str]) -> tuple[str, dict[str, list[str]]]:
    """(command, option -> values) from `COMMAND --opt=VALUE|--opt VALUE ...`."""
    if not args or args[0] not in _OPTIONS:
        raise HookUsageError(f"expected a command ({', '.join(_OPTIONS)})")
    command, known = args[0], _OPTIONS[args[0]]
    values: dict[str, list[str]] = {name: [] for name in known}
    rest = list(args[1:])
    while rest:
        token = rest.pop(0)
        name, equals, value = token.partition("=")
        if name not in known:
            raise HookUsageError(f"unknown option {token!r} for {command}")
        if not equals:
            if not rest:
                raise HookUsageError(f"option {name} needs a value")
            value = rest.pop(0)
        if values[name] and name not in _REPEATABLE:
            raise HookUsageError(f"option {name} given twice")
        values[name].append(value)
    for name in known:
        if name not in _REPEATABLE and not values[name]:
            raise HookUsageError(f"missing option {name}")
    return command, values


def main(args: Sequence[str], stdin: bytes, now: float) -> tuple[int, str]:
    """(exit code, stderr text) for one hook run."""
    try:
        command, values = parse_args(args)
    except HookUsageError as exc:
        blocking = bool(args) and args[0] == PRE_TOOL_USE
        return (2 if blocking else 1), f"agent-pool hook is misconfigured: {exc}. {USAGE}"
    if command == STOP:
        return run_stop(stdin, session_dir=values["--session-dir"][0], now=now)
    return run_pre_tool_use(
        stdin,
        pool_dir=values["--pool-dir"][0],
        project_dir=values["--project-dir"][0],
        session_dir=values["--session-dir"][0],
        owns=values["--owns"],
        now=now,
    )


def _run() -> int:
    args = sys.argv[1:]
    try:
        code, message = main(args, sys.stdin.buffer.read(), time.time())
    except Exception as exc:  # noqa: BLE001 - a hook must fail with a reason, not a traceback
        # A broken guard blocks the write (2); a broken Stop hook lets the session end (1).
        code = 2 if args[:1] == [PRE_TOOL_USE] else 1
        message = f"agent-pool hook failed: {type(exc).__name__}: {exc}"
    if message:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(_run())
