"""A fast, scriptable fake `claude` for the daemon's tests and benchmarks.

Standard library only and no imports from agent_pool, so that the launcher written by
`fake_claude_command` (`python -SE` importing a copy of this file) starts in about
2 ms more than a bare interpreter. For the same reason it imports neither `typing`
(10 ms here), `json` (8 ms: it writes JSON with a small encoder of its own and never
reads any), `pathlib` nor `signal` at start-up.

It speaks the real CLI's stream-json (see the spec's claude-cli.md): a system/init
event, an assistant text event, then the result event, one object per line.

Behaviour is scripted by directives in the prompt, one per line, run in order:

    fake: exit N             exit N without a result event
    fake: sleep SECONDS      pause before answering
    fake: hang               sleep forever (SIGTERM still kills it)
    fake: ignore-sigterm     ignore SIGTERM from now on (combine with hang or sleep)
    fake: no-result          exit 0 without a result event
    fake: error              API error result (is_error, status 500), exit 1
    fake: max-turns          subtype error_max_turns, is_error, exit 1 (as the real 2.1.330)
    fake: deny TOOL          list TOOL in permission_denials (repeatable)
    fake: spew BYTES         print BYTES of extra assistant output in ~1 KB lines
    fake: long-line BYTES    print one line of BYTES bytes (newline not counted)
    fake: text MESSAGE       the result text (default "done")
    fake: cost USD           total_cost_usd (default 0.0012)
    fake: write PATH TEXT    write TEXT to PATH, relative to the working directory
    fake: respond BODY       post a response mail into $AGENT_POOL_DIR/postoffice
    fake: mail K=V... -- BODY post any mail into the postoffice, with the header fields
                             given (a forger's raw write: no tool, no hook)
    fake: handoff NOTE       leave a handoff note, as the signal_handoff tool does
    fake: child              start a grandchild `sleep 1000` in our group, then hang
    fake: crash              abort (SIGABRT, no core file)

`--version` prints a version line. With `FAKE_CLAUDE_RECORD=<file>` every invocation
appends one JSON line: argv, cwd, pid, pgid, the AGENT_POOL_* variables, the prompt and
the time it started.
An unknown directive exits 2 with a message on stderr, so typos fail loudly.
"""

# os.path and open() rather than pathlib: start-up time (see above).
# ruff: noqa: PTH103, PTH104, PTH109, PTH118, PTH120, PTH123

from __future__ import annotations

import os
import sys
import time

_STARTED = time.time()  # as early as possible: the moment the process runs our code

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Final

VERSION: Final = "2.1.330 (fake claude)"
DEFAULT_TEXT: Final = "done"
DEFAULT_COST: Final = 0.0012
# Flags of the real CLI that take a value; any other flag is a switch.
_VALUE_FLAGS: Final = frozenset(
    {
        "--output-format",
        "--input-format",
        "--model",
        "--allowedTools",
        "--allowed-tools",
        "--disallowedTools",
        "--disallowed-tools",
        "--mcp-config",
        "--settings",
        "--max-turns",
        "--max-budget-usd",
        "--session-id",
        "--resume",
        "--permission-mode",
        "--append-system-prompt",
        "--system-prompt",
        "--add-dir",
        "--fallback-model",
    }
)
_SPEW_LINE: Final = 1000
_MODULE: Final = "_fake_claude"  # the copy of this file beside the launcher


def fake_claude_command(folder: Path) -> Path:
    """Write an executable fake `claude` into `folder` and return its path.

    The launcher imports a copy of this module placed beside it, from bytecode
    compiled here: a script is recompiled at every run, a module is not (~3 ms).
    `-S` skips site (and the venv's .pth files), `-E` ignores PYTHON* variables.
    """
    import py_compile  # noqa: PLC0415  # test-side only; keeps the fake's own start-up lean

    module = folder / f"{_MODULE}.py"
    _replace(module, type(folder)(__file__).read_text(encoding="utf-8"), 0o644)
    cache = folder / "__pycache__" / f"{_MODULE}.{sys.implementation.cache_tag}.pyc"
    py_compile.compile(str(module), cfile=str(cache), doraise=True)
    launcher = "\n".join(
        [
            f"#!{sys.executable} -SE",
            "import sys",
            f"from {_MODULE} import main",
            "sys.exit(main(sys.argv))",
            "",
        ]
    )
    target = folder / "claude"
    _replace(target, launcher, 0o755)
    return target


def _replace(path: Path, text: str, mode: int) -> None:
    # Replaced in one step: a fake being started concurrently never reads half a file.
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.chmod(mode)
    temp.replace(path)


def main(argv: list[str]) -> int:
    if "--version" in argv[1:]:
        sys.stdout.write(VERSION + "\n")
        return 0
    options, positional = _parse_flags(argv[1:])
    if positional:
        prompt = " ".join(positional)
    else:
        prompt = sys.stdin.buffer.read().decode("utf-8", "replace")
    _record(argv, prompt)
    try:
        return _Fake(options, prompt).run()
    except BrokenPipeError:
        return 1


def _parse_flags(args: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            name, _, value = arg.partition("=")
            options[name] = value
        elif arg in _VALUE_FLAGS and i + 1 < len(args):
            options[arg] = args[i + 1]
            i += 1
        elif arg.startswith("-"):
            options[arg] = ""
        else:
            positional.append(arg)
        i += 1
    return options, positional


def _session_marker(name: str, text: str) -> None:
    folder = os.environ.get("AGENT_POOL_SESSION_DIR")
    if folder:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as out:
            out.write(text)


def _record(argv: list[str], prompt: str) -> None:
    path = os.environ.get("FAKE_CLAUDE_RECORD")
    if not path:
        return
    entry = {
        "argv": argv,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "env": {k: v for k, v in os.environ.items() if k.startswith("AGENT_POOL_")},
        "stdin": prompt,
        "started": _STARTED,  # benchmarks measure dispatch latency against this
    }
    # One write to an O_APPEND file: concurrent fakes never interleave their lines.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (_json(entry) + "\n").encode())
    finally:
        os.close(fd)


def _post_mail(pool: str, message_id: str, text: str) -> None:
    postoffice = os.path.join(pool, "postoffice")
    temp = os.path.join(postoffice, f".{message_id}.tmp")
    with open(temp, "w", encoding="utf-8") as out:
        out.write(text)
    # Readers skip dotfiles, so the mail appears whole or not at all.
    os.rename(temp, os.path.join(postoffice, f"{message_id}.md"))


def _directives(prompt: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for line in prompt.splitlines():
        stripped = line.strip()
        if stripped.startswith("fake:"):
            verb, _, arg = stripped[5:].strip().partition(" ")
            found.append((verb, arg.strip()))
    return found


# Every character JSON requires escaped inside a string (non-ASCII stays as UTF-8).
_ESCAPES: Final = {i: f"\\u{i:04x}" for i in range(32)} | {
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
}


def _json(value: object) -> str:
    """Compact JSON for the few types the fake writes."""
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(item) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def _emit(event: dict[str, Any]) -> None:
    # Unbuffered, one object per line, like the real CLI flushing each event.
    _write_all((_json(event) + "\n").encode())


class _Fake:
    def __init__(self, options: dict[str, str], prompt: str) -> None:
        self.started = time.monotonic()
        self.prompt = prompt
        self.model = options.get("--model", "sonnet")
        tools = options.get("--allowedTools") or options.get("--allowed-tools") or ""
        self.tools = [tool for tool in tools.split(",") if tool]
        self.max_turns = int(options.get("--max-turns") or 1)
        raw = os.urandom(16).hex()
        self.session_id = options.get("--session-id") or (
            f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
        )
        self.text: str | None = None
        self.cost = DEFAULT_COST
        self.denials: list[str] = []
        self.outcome = "success"  # or "error", "max-turns"

    def run(self) -> int:
        _emit(
            {
                "type": "system",
                "subtype": "init",
                "session_id": self.session_id,
                "cwd": os.getcwd(),
                "model": self.model,
                "tools": self.tools,
                "mcp_servers": [],
                "permissionMode": "default",
                "claude_code_version": VERSION.split()[0],
            }
        )
        for verb, arg in _directives(self.prompt):
            handler = getattr(self, "do_" + verb.replace("-", "_"), None)
            if handler is None:
                sys.stderr.write(f"fake claude: unknown directive {verb!r}\n")
                return 2
            code: int | None = handler(arg)
            if code is not None:
                return code
        return self.finish()

    def finish(self) -> int:
        text = self.text if self.text is not None else DEFAULT_TEXT
        if self.outcome == "error" and self.text is None:
            text = "API Error: 500 Internal server error"
        self.assistant(text)
        is_error = self.outcome != "success"
        _emit(
            {
                "type": "result",
                "subtype": "error_max_turns" if self.outcome == "max-turns" else "success",
                "is_error": is_error,
                "duration_ms": int((time.monotonic() - self.started) * 1000),
                "duration_api_ms": 1,
                "num_turns": self.max_turns if self.outcome == "max-turns" else 1,
                "result": text,
                "session_id": self.session_id,
                "total_cost_usd": self.cost,
                "usage": {
                    "input_tokens": len(self.prompt) // 4 + 1,
                    "output_tokens": len(text) // 4 + 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
                "permission_denials": [
                    {"tool_name": tool, "tool_use_id": f"toolu_fake_{i}", "tool_input": {}}
                    for i, tool in enumerate(self.denials)
                ],
                "terminal_reason": "max_turns" if self.outcome == "max-turns" else "completed",
                "api_error_status": 500 if self.outcome == "error" else None,
            }
        )
        return 0 if self.outcome == "success" else 1

    def assistant_event(self, text: str) -> dict[str, Any]:
        return {
            "type": "assistant",
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": text}],
            },
            "session_id": self.session_id,
        }

    def assistant(self, text: str) -> None:
        _emit(self.assistant_event(text))

    def line_of(self, size: int) -> bytes:
        """An assistant event line of `size` bytes, newline included (or the shortest)."""
        overhead = len(_json(self.assistant_event(""))) + 1
        return (_json(self.assistant_event("x" * max(size - overhead, 0))) + "\n").encode()

    # Directives: each returns an exit code to end the run, or None to go on.

    def do_exit(self, arg: str) -> int:
        return int(arg or "1")

    def do_sleep(self, arg: str) -> None:
        time.sleep(float(arg))

    def do_hang(self, _arg: str) -> int:
        while True:
            time.sleep(3600)

    def do_ignore_sigterm(self, _arg: str) -> None:
        import signal  # noqa: PLC0415  # it imports enum: only pay for it here

        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def do_no_result(self, _arg: str) -> int:
        return 0

    def do_error(self, _arg: str) -> None:
        self.outcome = "error"

    def do_max_turns(self, _arg: str) -> None:
        self.outcome = "max-turns"

    def do_deny(self, arg: str) -> None:
        self.denials.append(arg or "Write")

    def do_spew(self, arg: str) -> None:
        remaining = int(arg)
        line = self.line_of(_SPEW_LINE)
        batch = line * 64
        while remaining >= len(batch):
            _write_all(batch)
            remaining -= len(batch)
        while remaining >= len(line):
            _write_all(line)
            remaining -= len(line)
        if remaining > 0:
            _write_all(self.line_of(remaining))

    def do_long_line(self, arg: str) -> None:
        _write_all(self.line_of(int(arg) + 1))

    def do_text(self, arg: str) -> None:
        self.text = arg

    def do_cost(self, arg: str) -> None:
        self.cost = float(arg)

    def do_write(self, arg: str) -> None:
        path, _, content = arg.partition(" ")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            out.write(content)

    def do_respond(self, arg: str) -> int | None:
        pool = os.environ.get("AGENT_POOL_DIR")
        if not pool:
            sys.stderr.write("fake claude: respond needs AGENT_POOL_DIR\n")
            return 2
        task = os.environ.get("AGENT_POOL_TASK_ID", "")
        message_id = f"r-{task}-{os.getpid()}" if task else f"r-{os.getpid()}"
        header = [
            "---",
            f"id: {message_id}",
            f"from: {os.environ.get('AGENT_POOL_EXPERT', 'expert')}",
            f"to: {self.sender()}",
            "type: response",
        ]
        if task:
            header.append(f"in-reply-to: {task}")
        _post_mail(pool, message_id, "\n".join([*header, "---", arg]) + "\n")
        # What the real send_response tool leaves for the daemon and the Stop hook.
        _session_marker("responded", message_id)
        return None

    def do_mail(self, arg: str) -> int | None:
        pool = os.environ.get("AGENT_POOL_DIR")
        fields, separator, body = arg.partition(" -- ")
        pairs = [item.partition("=") for item in fields.split()]
        if not pool or not separator or any(not key or not eq for key, eq, _ in pairs):
            sys.stderr.write("fake claude: mail needs AGENT_POOL_DIR and K=V... -- BODY\n")
            return 2
        header = {key: value for key, _, value in pairs}
        message_id = header.pop("id", "") or f"m-{os.getpid()}-{time.monotonic_ns()}"
        lines = ["---", f"id: {message_id}", *(f"{k}: {v}" for k, v in header.items()), "---"]
        _post_mail(pool, message_id, "\n".join([*lines, body]) + "\n")
        return None

    def do_handoff(self, arg: str) -> None:
        # What the real signal_handoff tool leaves: the daemon re-delivers the task.
        _session_marker("handoff.md", arg or "handing over")

    def sender(self) -> str:
        for line in self.prompt.splitlines():
            key, sep, value = line.strip().partition(":")
            if sep and key == "from" and value.strip():
                return value.strip()
        return "concierge"

    def do_child(self, _arg: str) -> int:
        devnull = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        ]
        pid = os.posix_spawnp("sleep", ["sleep", "1000"], os.environ, file_actions=devnull)
        _emit({"type": "system", "subtype": "fake_child", "pid": pid})
        return self.do_hang("")

    def do_crash(self, _arg: str) -> int:
        import resource  # noqa: PLC0415  # only this rare path pays for the import

        # No core file in the test's working directory.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.abort()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
