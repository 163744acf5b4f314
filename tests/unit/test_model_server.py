"""The scripted model server without the CLI: rendering, selection, scripts, HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_pool.testing.model_script import (
    Conversation,
    Script,
    ScriptError,
    ToolCall,
    Turn,
    Usage,
)
from agent_pool.testing.model_server import RecordedRequest, ScriptedModelServer
from agent_pool.testing.model_wire import (
    conversation_position,
    is_auxiliary,
    parse_sse,
    prompt_text,
    render_error,
    render_stream,
)

TOOLS = [{"name": "Write", "input_schema": {}}, {"name": "Bash", "input_schema": {}}]


def request_body(prompt: str, assistant_turns: int = 0, **extra: Any) -> dict[str, Any]:
    """A request shaped like the CLI's: prompt, a `role: system` entry, then the history."""
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "<reminder/>"}, {"type": "text", "text": prompt}],
        },
        {"role": "system", "content": "# Environment"},
    ]
    for i in range(assistant_turns):
        messages.append({"role": "assistant", "content": [{"type": "text", "text": f"a{i}"}]})
        messages.append({"role": "user", "content": f"u{i}"})
    return {"model": "claude-test", "messages": messages, "tools": TOOLS, "stream": True, **extra}


def blocks_of(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Reassemble content blocks from a parsed stream, as a client would."""
    blocks: dict[int, dict[str, Any]] = {}
    for name, data in events:
        if name == "content_block_start":
            blocks[data["index"]] = {**data["content_block"], "_json": ""}
        elif name == "content_block_delta":
            block, delta = blocks[data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                block["_json"] += delta["partial_json"]
    out = []
    for index in sorted(blocks):
        block = blocks[index]
        raw = block.pop("_json")
        if block["type"] == "tool_use":
            block["input"] = json.loads(raw)
        out.append(block)
    return out


# --- rendering ----------------------------------------------------------------------------


def test_text_stream_frames_parse_back() -> None:
    text = "A long answer " * 20  # several deltas
    events = parse_sse(render_stream(Turn.text(text), model="m", input_tokens=123))

    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_delta") > 1
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_")
    assert (start["role"], start["model"], start["usage"]["input_tokens"]) == (
        "assistant",
        "m",
        123,
    )
    assert blocks_of(events) == [{"type": "text", "text": text}]
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] >= 1


def test_tool_stream_has_leading_text_and_every_call() -> None:
    calls = [
        ToolCall("Write", {"file_path": "a.txt", "content": "x" * 300}),
        ToolCall("mcp__agent-pool__send", {"to": "backend", "body": "ünï"}),
    ]
    raw = render_stream(Turn.tools(calls, text="Two calls."), model="m", input_tokens=1)

    events = parse_sse(raw)
    blocks = blocks_of(events)
    assert blocks[0] == {"type": "text", "text": "Two calls."}
    assert [(b["name"], b["input"]) for b in blocks[1:]] == [(c.name, c.input) for c in calls]
    assert all(b["id"].startswith("toolu_") for b in blocks[1:])
    assert len({b["id"] for b in blocks[1:]}) == 2
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert raw.endswith(b"\n\n")
    assert all(frame.startswith(b"event: ") for frame in raw.split(b"\n\n") if frame)


def test_scripted_usage_is_reported() -> None:
    turn = Turn.text("hi", usage=Usage(input_tokens=1000, output_tokens=50))
    events = parse_sse(render_stream(turn, model="m", input_tokens=7))
    assert events[0][1]["message"]["usage"]["input_tokens"] == 1000
    assert events[-2][1]["usage"]["output_tokens"] == 50


def test_error_body_has_the_api_shape() -> None:
    assert json.loads(render_error(Turn.error(500, "boom"))) == {
        "type": "error",
        "error": {"type": "api_error", "message": "boom"},
    }
    assert Turn.error(529).error_type == "overloaded_error"
    assert Turn.error(429, error_type="custom").error_type == "custom"


# --- choosing the answer ------------------------------------------------------------------


def test_turn_selection_by_position_ignores_system_entries() -> None:
    script = Script(
        [
            Conversation("", [Turn.text("default")]),
            Conversation("alpha", [Turn.text("a0"), Turn.tool("Bash", {"command": "ls"})]),
        ],
        final_text="all done",
    )
    body = request_body("please do alpha", assistant_turns=1)

    assert "please do alpha" in prompt_text(body)
    assert conversation_position(body) == 1
    chosen = script.conversation_for(prompt_text(body))
    assert chosen is not None
    assert chosen.match == "alpha"  # a non-empty match wins over an earlier default
    assert script.turn_at(chosen, 0) == Turn.text("a0")
    assert script.turn_at(chosen, 1).kind == "tool_use"
    assert script.turn_at(chosen, 2) == Turn.text("all done")  # past the end
    other = script.conversation_for("something else")
    assert other is not None
    assert other.match == ""
    assert Script([Conversation("x", [])]).conversation_for("nothing") is None


def test_auxiliary_requests_are_recognised() -> None:
    side_query = {"model": "m", "messages": [{"role": "user", "content": "title this"}]}
    assert is_auxiliary(side_query)
    assert not is_auxiliary(request_body("x"))
    assert not is_auxiliary({**request_body("x"), "tools": []})  # `--tools ""` sessions


def test_turns_validate_their_shape() -> None:
    with pytest.raises(ScriptError, match="delay_s"):
        Turn.text("x", delay_s=-1)
    with pytest.raises(ScriptError, match="4xx or 5xx"):
        Turn.error(200)
    with pytest.raises(ScriptError, match="tool calls"):
        Turn.tools([])


# --- scripts as data ----------------------------------------------------------------------

FULL_SCRIPT = Script(
    [
        Conversation(
            "alpha",
            [
                Turn.text("hello", delay_s=0.5, usage=Usage(10, 2)),
                Turn.tool("Write", {"file_path": "a", "content": "b"}, text="writing"),
                Turn.tools([ToolCall("Read", {"file_path": "a"}), ToolCall("Bash", {})]),
                Turn.error(503, "down", delay_s=1),
                Turn.hang(),
            ],
        ),
        Conversation("", [Turn.text("default")]),
    ],
    final_text="finished",
)


def test_dict_round_trip() -> None:
    data = FULL_SCRIPT.to_dict()
    assert Script.from_dict(json.loads(json.dumps(data))) == FULL_SCRIPT


def test_load_json_and_toml(tmp_path: Path) -> None:
    as_json = tmp_path / "script.json"
    as_json.write_text(json.dumps(FULL_SCRIPT.to_dict()), encoding="utf-8")
    assert Script.load(as_json) == FULL_SCRIPT

    as_toml = tmp_path / "script.toml"
    as_toml.write_text(
        'final_text = "bye"\n'
        "[[conversations]]\n"
        'match = "alpha"\n'
        "[[conversations.turns]]\n"
        'tool = "Write"\n'
        'input = { file_path = "x.txt", content = "y" }\n'
        "[[conversations.turns]]\n"
        "error = 500\n"
        'message = "oops"\n'
        "[[conversations.turns]]\n"
        'text = "slow"\n'
        "delay_s = 2\n",
        encoding="utf-8",
    )
    assert Script.load(as_toml) == Script(
        [
            Conversation(
                "alpha",
                [
                    Turn.tool("Write", {"file_path": "x.txt", "content": "y"}),
                    Turn.error(500, "oops"),
                    Turn.text("slow", delay_s=2),
                ],
            )
        ],
        final_text="bye",
    )


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"conversation": []}, "(top level): unknown key(s): conversation"),
        ({"conversations": {}}, "conversations: expected list"),
        ({"conversations": [{"match": 3}]}, "conversations[0].match: expected str"),
        ({"conversations": [{"turns": [{}]}]}, "conversations[0].turns[0]: a turn needs"),
        ({"conversations": [{"turns": [{"txt": "a"}]}]}, "unknown key(s): txt"),
        ({"conversations": [{"turns": [{"error": True}]}]}, "turns[0].error: expected int"),
        ({"conversations": [{"turns": [{"error": 200}]}]}, "turns[0].status: an error turn"),
        ({"conversations": [{"turns": [{"tools": []}]}]}, "turns[0].tools: must list"),
        ({"conversations": [{"turns": [{"text": "a", "delay_s": "1"}]}]}, "turns[0].delay_s"),
    ],
)
def test_bad_scripts_name_the_key(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ScriptError) as caught:
        Script.from_dict(data)
    assert where in str(caught.value)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ScriptError, match=r"broken\.json: not valid json"):
        Script.load(broken)
    with pytest.raises(ScriptError, match="cannot read"):
        Script.load(tmp_path / "missing.toml")


# --- over HTTP, in process ----------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ScriptedModelServer]:
    script = Script(
        [
            Conversation("fail", [Turn.error(500, "scripted outage")]),
            Conversation("stall", [Turn.hang()]),
            Conversation("", [Turn.text("first"), Turn.tool("Write", {"file_path": "f"})]),
        ]
    )
    with ScriptedModelServer(script, log_path=tmp_path / "requests.jsonl") as running:
        yield running


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, server: ScriptedModelServer, timeout: float = 10.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, str, bytes]:
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def client(server: ScriptedModelServer) -> Iterator[Client]:
    made = Client(server)
    yield made
    made.close()


def test_messages_are_streamed_by_position(server: ScriptedModelServer, client: Client) -> None:
    status, kind, raw = client.request("POST", "/v1/messages?beta=true", request_body("go"))
    assert (status, kind) == (200, "text/event-stream")
    assert blocks_of(parse_sse(raw)) == [{"type": "text", "text": "first"}]

    _, _, raw = client.request("POST", "/v1/messages?beta=true", request_body("go", 1))
    [tool] = blocks_of(parse_sse(raw))
    assert (tool["name"], tool["input"]) == ("Write", {"file_path": "f"})

    # A retry of the first request gets the same answer: no hidden state advanced.
    _, _, raw = client.request("POST", "/v1/messages", request_body("go"))
    assert blocks_of(parse_sse(raw)) == [{"type": "text", "text": "first"}]

    _, _, raw = client.request("POST", "/v1/messages", request_body("go", 5))
    assert blocks_of(parse_sse(raw)) == [{"type": "text", "text": "done"}]

    records = server.requests
    assert [(r.turn_index, r.reply) for r in records] == [
        (0, "text"),
        (1, "tool_use"),
        (0, "text"),
        (5, "final"),
    ]
    assert records[1].message_count == 4
    assert records[1].tools == ("Write", "Bash")
    assert records[0].model == "claude-test"


def test_error_turn_answers_with_its_status(server: ScriptedModelServer, client: Client) -> None:
    status, kind, raw = client.request("POST", "/v1/messages", request_body("fail now"))
    assert (status, kind) == (500, "application/json")
    assert json.loads(raw)["error"] == {"type": "api_error", "message": "scripted outage"}
    assert server.requests[0].status == 500


def test_side_requests_and_other_paths_are_harmless(
    server: ScriptedModelServer, client: Client
) -> None:
    side = {"model": "small", "messages": [{"role": "user", "content": "fail: title this"}]}
    status, _, raw = client.request("POST", "/v1/messages", side)
    assert status == 200
    assert blocks_of(parse_sse(raw)) == [{"type": "text", "text": "ok"}]

    status, _, raw = client.request("POST", "/v1/messages/count_tokens", request_body("x"))
    assert status == 200
    assert json.loads(raw)["input_tokens"] > 0

    assert client.request("HEAD", "/")[0] == 200
    assert client.request("GET", "/api/hello") == (200, "application/json", b"{}")
    assert client.request("DELETE", "/anything")[0] == 200
    replies = [(r.auxiliary, r.reply) for r in server.requests]
    assert replies == [
        (True, "auxiliary"),
        (False, "count_tokens"),
        (False, "other"),
        (False, "other"),
        (False, "other"),
    ]


def test_request_log_is_json_lines(
    server: ScriptedModelServer, client: Client, tmp_path: Path
) -> None:
    client.request("POST", "/v1/messages", request_body("logged prompt"))
    client.request("HEAD", "/")
    lines = (tmp_path / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 2
    assert first["prompt"].endswith("logged prompt")
    assert RecordedRequest(**{**first, "tools": tuple(first["tools"])}) == server.requests[0]


def test_chunked_and_large_bodies_are_read_whole(server: ScriptedModelServer) -> None:
    body = json.dumps(request_body("big", system="s" * 3_000_000)).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head)
        for offset in range(0, len(body), 1_000_000):
            chunk = body[offset : offset + 1_000_000]
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        [record] = server.wait_for_requests(1, timeout=10)
    assert record.system_chars == 3_000_000
    assert record.reply == "text"


def test_garbage_gets_a_400(server: ScriptedModelServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"this is not http\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


def post_raw(sock: socket.socket, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))


@pytest.mark.parametrize(
    "turn", [Turn.hang(), Turn.text("late", delay_s=30)], ids=["hang", "delay"]
)
def test_stop_cuts_a_waiting_answer(turn: Turn) -> None:
    with (
        ScriptedModelServer(Script.of(turn)) as running,
        socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock,
    ):
        post_raw(sock, request_body("x"))
        running.wait_for_requests(1, timeout=10)
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing is answered while it waits
        started = time.monotonic()
        running.stop()
        stopped_in = time.monotonic() - started
        sock.settimeout(5)
        assert sock.recv(1) == b""  # the connection was closed without an answer
    assert stopped_in < 1.0


def test_wait_for_requests_times_out(server: ScriptedModelServer) -> None:
    with pytest.raises(TimeoutError, match="saw 0 of 1"):
        server.wait_for_requests(1, timeout=0.05)


def test_start_is_fast_and_stop_is_idempotent() -> None:
    started = time.perf_counter()
    running = ScriptedModelServer(Script.of()).start()
    elapsed = time.perf_counter() - started
    try:
        assert running.base_url == f"http://127.0.0.1:{running.port}"
        with pytest.raises(RuntimeError, match="already started"):
            running.start()
    finally:
        running.stop()
        running.stop()
    assert elapsed < 0.1
    with pytest.raises(RuntimeError, match="not started"):
        _ = running.base_url
