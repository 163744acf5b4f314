"""Running the real fake `claude` as a child process: output, exit codes, stopping."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from agent_pool.mail import MessageType, parse_mail
from agent_pool.session import (
    LogTail,
    ProcessIdentity,
    ProcessRunner,
    ResultEvent,
    RunningSession,
    SessionSpec,
    SessionStartError,
    find_by_env,
    group_members,
    identify,
    is_alive,
    judge,
    read_result_event,
    signal_group,
)
from agent_pool.testing import fake_claude_command

T = TypeVar("T")

pytestmark = pytest.mark.slow


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one scenario with a bound, so a bug hangs nothing."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, 30)

    return asyncio.run(bounded())


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    me = psutil.Process()
    leftovers = me.children(recursive=True)
    if not eventually(lambda: not me.children(recursive=True), timeout=5):
        for child in leftovers:
            child.kill()
        pytest.fail(f"child processes left behind: {leftovers}")
    # asyncio's child watcher uses a thread per child; each must end with its child.
    assert eventually(lambda: not [t for t in threading.enumerate() if "waitpid" in t.name])


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_claude_command(tmp_path_factory.mktemp("bin"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGENT_POOL_", "FAKE_CLAUDE_"))
    }
    return clean | {
        "AGENT_POOL_TASK_ID": f"t-{uuid.uuid4().hex[:12]}",
        "AGENT_POOL_EXPERT": "backend",
        "AGENT_POOL_ROLE": "expert",
        "AGENT_POOL_DIR": str(tmp_path / "pool"),
    }


def make_spec(
    tmp_path: Path, argv: list[str], env: dict[str, str], prompt: str | bytes = ""
) -> SessionSpec:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    task = env["AGENT_POOL_TASK_ID"]
    return SessionSpec(
        task_id=task,
        argv=argv,
        cwd=project,
        env=env,
        stdin=prompt.encode() if isinstance(prompt, str) else prompt,
        log_path=logs / f"{task}.jsonl",
        stderr_path=logs / f"{task}.stderr",
    )


def events_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def start(spec: SessionSpec) -> RunningSession:
    return await ProcessRunner().start(spec)


def test_success_streams_json_into_the_log(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p", "--model", "opus"], env, "fake: text all good\n")

    async def scenario() -> int | None:
        session = await start(spec)
        assert session.identity.pgid == session.identity.pid
        return await session.wait()

    assert run(scenario()) == 0
    events = events_of(spec.log_path)
    assert [e["type"] for e in events] == ["system", "assistant", "result"]
    assert events[0]["model"] == "opus"
    assert spec.log_path.stat().st_mode & 0o777 == 0o600
    raw = read_result_event(spec.log_path)
    assert raw is not None
    result = ResultEvent.from_event(raw)
    assert result.result == "all good"
    assert result.total_cost_usd == pytest.approx(0.0012)
    assert judge(0, result).success


def test_log_is_appended_not_truncated(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: text second\n")
    spec.log_path.write_bytes(b'{"type": "marker"}\n')

    async def scenario() -> int | None:
        return await (await start(spec)).wait()

    assert run(scenario()) == 0
    assert events_of(spec.log_path)[0] == {"type": "marker"}


def test_exit_code(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "Work.\nfake: exit 3\n")

    async def scenario() -> int | None:
        return await (await start(spec)).wait()

    code = run(scenario())
    assert code == 3
    assert judge(code, None).reason == "exited with code 3"


@pytest.mark.parametrize(
    ("script", "code", "reason"),
    [
        ("fake: error", 1, "API error (status 500): API Error: 500 Internal server error"),
        ("fake: max-turns", 1, "exceeded max turns (5)"),
        ("fake: deny Write\nfake: deny Bash", 0, "tool denied: Write, Bash"),
        ("fake: no-result", 0, "no result event in the session output"),
        ("fake: crash", -signal.SIGABRT, "killed by signal SIGABRT"),
    ],
)
def test_failures_are_detected_from_structured_output(
    tmp_path: Path, fake: Path, env: dict[str, str], *, script: str, code: int, reason: str
) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p", "--max-turns", "5"], env, script + "\n")

    async def scenario() -> int | None:
        return await (await start(spec)).wait()

    exit_code = run(scenario())
    assert exit_code == code
    raw = read_result_event(spec.log_path)
    verdict = judge(exit_code, None if raw is None else ResultEvent.from_event(raw))
    assert verdict.success is False
    assert verdict.reason == reason


def test_stop_a_hanging_session_with_sigterm(
    tmp_path: Path, fake: Path, env: dict[str, str]
) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: hang\n")

    async def scenario() -> tuple[int | None, ProcessIdentity]:
        session = await start(spec)
        await until(lambda: spec.log_path.stat().st_size > 0)  # it is running
        await session.stop(grace=10)
        return await session.wait(), session.identity

    code, identity = run(scenario())
    assert code == -signal.SIGTERM
    assert group_members(identity.pgid) == []
    assert not is_alive(identity)


def test_sigkill_after_the_grace_period(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    # The spewed line is written after SIGTERM is ignored: once it is in the log, the
    # fake is deaf to SIGTERM.
    prompt = "fake: ignore-sigterm\nfake: spew 10\nfake: hang\n"
    spec = make_spec(tmp_path, [str(fake), "-p"], env, prompt)

    async def scenario() -> tuple[int | None, ProcessIdentity]:
        session = await start(spec)
        await until(lambda: len(events_of(spec.log_path)) >= 2)
        await session.stop(grace=0.3)
        return await session.wait(), session.identity

    code, identity = run(scenario())
    assert code == -signal.SIGKILL
    assert group_members(identity.pgid) == []


def test_grandchild_dies_with_the_group(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: child\n")

    def child_pid() -> int | None:
        for event in events_of(spec.log_path):
            if event.get("subtype") == "fake_child":
                return int(event["pid"])
        return None

    async def scenario() -> tuple[int, ProcessIdentity]:
        session = await start(spec)
        await until(lambda: child_pid() is not None)
        pid = child_pid()
        assert pid is not None
        assert os.getpgid(pid) == session.identity.pgid
        assert sorted(group_members(session.identity.pgid)) == sorted([session.identity.pid, pid])
        await session.stop(grace=5)
        assert await session.wait() == -signal.SIGTERM
        return pid, session.identity

    grandchild, identity = run(scenario())
    assert gone(grandchild)
    assert group_members(identity.pgid) == []


def test_leftover_group_members_are_killed_after_the_leader_exited(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # A shell that leaves a background job behind and exits 0 on its own.
    script = "sleep 1000 </dev/null >/dev/null 2>&1 & echo started"
    spec = make_spec(tmp_path, ["sh", "-c", script], env)

    async def scenario() -> ProcessIdentity:
        session = await start(spec)
        assert await session.wait() == 0
        assert len(group_members(session.identity.pgid)) == 1  # the orphaned sleep
        await session.stop(grace=5)
        await session.stop(grace=5)  # idempotent
        return session.identity

    identity = run(scenario())
    assert group_members(identity.pgid) == []


def test_stop_after_a_normal_exit_is_harmless(
    tmp_path: Path, fake: Path, env: dict[str, str]
) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "hello\n")

    async def scenario() -> int | None:
        session = await start(spec)
        code = await session.wait()
        await session.stop(grace=1)
        await asyncio.gather(session.stop(grace=1), session.stop(grace=1))
        assert await session.wait() == code
        return code

    assert run(scenario()) == 0


def test_log_is_readable_while_the_session_runs(
    tmp_path: Path, fake: Path, env: dict[str, str]
) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: spew 5000\nfake: sleep 30\n")

    async def scenario() -> list[str]:
        session = await start(spec)
        seen: list[str] = []
        async with LogTail(spec.log_path) as tail:
            async for event in tail:
                seen.append(event["type"])
                if len(seen) == 3:
                    break
            assert is_alive(session.identity)  # still sleeping
        await session.stop(grace=5)
        await session.wait()
        return seen

    assert run(scenario()) == ["system", "assistant", "assistant"]


def test_log_tail_follows_to_the_end(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    prompt = "fake: sleep 0.2\nfake: long-line 2000000\nfake: spew 300000\nfake: text bye\n"
    spec = make_spec(tmp_path, [str(fake), "-p"], env, prompt)

    async def scenario() -> tuple[list[dict[str, Any]], int, int]:
        session = await start(spec)
        tail = LogTail(spec.log_path, poll_interval=0.02)

        async def finish_when_exited() -> None:
            await session.wait()
            tail.finish()

        waiter = asyncio.create_task(finish_when_exited())
        events = [event async for event in tail]
        await waiter
        return events, tail.dropped_lines, tail.offset

    events, dropped, offset = run(scenario())
    assert events[0]["type"] == "system"
    assert events[-1]["type"] == "result"
    assert events[-1]["result"] == "bye"
    assert dropped == 1  # the 2 MB line, over the 1 MiB cap
    assert offset == spec.log_path.stat().st_size

    async def resume() -> list[dict[str, Any]]:
        # A restarted daemon resumes from a recorded offset.
        tail = LogTail(spec.log_path, offset=offset)
        tail.finish()
        return [event async for event in tail]

    assert run(resume()) == []


def test_missing_binary(tmp_path: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(tmp_path / "no-such-claude"), "-p"], env)
    with pytest.raises(SessionStartError, match="no-such-claude") as info:
        run(start(spec))
    assert "executable not found" in str(info.value)
    assert info.value.binary == str(tmp_path / "no-such-claude")


def test_missing_binary_on_path(tmp_path: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, ["agent-pool-no-such-claude", "-p"], env)
    with pytest.raises(SessionStartError, match="not found on PATH"):
        run(start(spec))


def test_missing_working_directory(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env)
    bad = SessionSpec(
        task_id=spec.task_id,
        argv=spec.argv,
        cwd=tmp_path / "gone",
        env=spec.env,
        stdin=b"",
        log_path=spec.log_path,
        stderr_path=spec.stderr_path,
    )
    with pytest.raises(SessionStartError, match="working directory"):
        run(start(bad))


def test_child_that_never_reads_stdin(tmp_path: Path, env: dict[str, str]) -> None:
    # Far more than a pipe holds: the writer must give up quietly when the child exits.
    spec = make_spec(tmp_path, ["sh", "-c", "exit 4"], env, b"x" * (4 << 20))

    async def scenario() -> int | None:
        return await (await start(spec)).wait()

    assert run(scenario()) == 4


def test_stop_a_session_that_never_reads_its_prompt(tmp_path: Path, env: dict[str, str]) -> None:
    # The prompt writer is stuck on a full pipe; stopping must not wait on it.
    spec = make_spec(tmp_path, ["sh", "-c", "exec sleep 1000"], env, b"x" * (4 << 20))

    async def scenario() -> int | None:
        session = await start(spec)
        await session.stop(grace=5)
        return await session.wait()

    assert run(scenario()) == -signal.SIGTERM


def test_large_prompt_arrives_whole(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    record = tmp_path / "record.jsonl"
    prompt = "from: architect\n" + "context line\n" * 50_000 + "fake: text read it all\n"
    spec = make_spec(
        tmp_path,
        [str(fake), "-p", "--model", "sonnet", "--allowedTools", "Read,Write"],
        env | {"FAKE_CLAUDE_RECORD": str(record)},
        prompt,
    )

    async def scenario() -> tuple[int | None, int]:
        session = await start(spec)
        return await session.wait(), session.identity.pid

    code, pid = run(scenario())
    assert code == 0
    (entry,) = events_of(record)
    assert entry["stdin"] == prompt
    assert entry["argv"][1:] == ["-p", "--model", "sonnet", "--allowedTools", "Read,Write"]
    assert entry["pid"] == pid
    assert entry["pgid"] == pid
    assert entry["cwd"] == str(spec.cwd)
    assert entry["env"]["AGENT_POOL_TASK_ID"] == spec.task_id
    assert entry["env"]["AGENT_POOL_EXPERT"] == "backend"


def test_adopt_waits_for_a_live_process(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: sleep 0.5\n")

    async def scenario() -> tuple[int | None, int | None]:
        session = await start(spec)
        adopted = ProcessRunner().adopt(session.identity)
        assert adopted.identity == session.identity
        unknown = await adopted.wait()
        assert not is_alive(session.identity)
        return unknown, await session.wait()

    assert run(scenario()) == (None, 0)


def test_adopt_and_stop_an_orphan(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    # Started like a crashed daemon's session: not our child (its parent shell is gone).
    task = env["AGENT_POOL_TASK_ID"]
    launched = subprocess.run(
        ["sh", "-c", f"'{fake}' -p 'fake: hang' </dev/null >/dev/null 2>&1 & echo $!"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        timeout=10,
    )
    pid = int(launched.stdout)
    try:
        assert pid not in [child.pid for child in psutil.Process().children(recursive=True)]
        assert eventually(lambda: find_by_env("AGENT_POOL_TASK_ID", task) == [pid])
        identity = identify(pid)
        assert identity is not None
        assert is_alive(identity)

        async def scenario() -> int | None:
            adopted = ProcessRunner().adopt(identity)
            await adopted.stop(grace=5)
            return await adopted.wait()

        assert run(scenario()) is None
        assert not is_alive(identity)
        assert group_members(identity.pgid) == []
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_adopted_identity_with_another_start_time_is_not_ours(
    tmp_path: Path, fake: Path, env: dict[str, str]
) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: hang\n")

    async def scenario() -> None:
        session = await start(spec)
        real = session.identity
        stranger = ProcessIdentity(real.pid, real.pgid, real.start_time - 3600)
        assert not is_alive(stranger)
        impostor = ProcessRunner().adopt(stranger)
        assert await impostor.wait() is None  # returns at once: that process is gone
        await impostor.stop(grace=0.1)  # must not touch the live session's group
        assert is_alive(real)
        await session.stop(grace=5)
        await session.wait()

    run(scenario())


def test_find_by_env_finds_a_running_session(
    tmp_path: Path, fake: Path, env: dict[str, str]
) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: hang\n")

    async def scenario() -> None:
        session = await start(spec)
        found = find_by_env("AGENT_POOL_TASK_ID", spec.task_id)
        assert found == [session.identity.pid]
        assert find_by_env("AGENT_POOL_TASK_ID", spec.task_id + "-other") == []
        await session.stop(grace=5)
        await session.wait()

    run(scenario())


def test_respond_posts_a_parseable_mail(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    postoffice = Path(env["AGENT_POOL_DIR"]) / "postoffice"
    postoffice.mkdir(parents=True)
    prompt = (
        "from: architect\nto: backend\n\n"
        "fake: respond The API is ready.\nfake: write out/a.txt hi\n"
    )
    spec = make_spec(tmp_path, [str(fake), "-p"], env, prompt)

    async def scenario() -> tuple[int | None, int]:
        session = await start(spec)
        return await session.wait(), session.identity.pid

    code, pid = run(scenario())
    assert code == 0
    files = sorted(p.name for p in postoffice.iterdir())
    assert files == [f"r-{spec.task_id}-{pid}.md"]  # no temp file left behind
    msg = parse_mail((postoffice / files[0]).read_bytes())
    assert msg.type is MessageType.RESPONSE
    assert msg.id == f"r-{spec.task_id}-{pid}"
    assert msg.sender == "backend"
    assert msg.to == "architect"
    assert msg.in_reply_to == spec.task_id
    assert msg.body == "The API is ready.\n"
    assert (spec.cwd / "out" / "a.txt").read_text() == "hi"


def test_unknown_directive_fails_loudly(tmp_path: Path, fake: Path, env: dict[str, str]) -> None:
    spec = make_spec(tmp_path, [str(fake), "-p"], env, "fake: explode\n")

    async def scenario() -> int | None:
        return await (await start(spec)).wait()

    assert run(scenario()) == 2
    assert "unknown directive 'explode'" in spec.stderr_path.read_text()


def test_fake_version(fake: Path) -> None:
    out = subprocess.run([str(fake), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout == "2.1.330 (fake claude)\n"


def test_process_helpers_on_edge_cases() -> None:
    me = identify(os.getpid())
    assert me is not None
    assert me.pgid == os.getpgid(0)
    assert is_alive(me)
    assert not is_alive(ProcessIdentity(me.pid, me.pgid, 0.0))  # unknown start time
    with pytest.raises(ValueError, match="refusing"):
        signal_group(0, signal.SIGTERM)
    with pytest.raises(ValueError, match="refusing"):
        signal_group(1, signal.SIGTERM)
    unused = max(psutil.pids()) + 100_000  # above every live pid
    assert identify(unused) is None
    assert not signal_group(unused, 0)
    assert group_members(unused) == []
