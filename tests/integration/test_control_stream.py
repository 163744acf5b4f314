"""A slow subscriber on a real unix socket never slows the event source."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from agent_pool.control import protocol
from agent_pool.control.server import ControlServer, Stream
from agent_pool.daemon.events import MISSED, EventLog

EVENTS = 50_000  # ~4 MB of JSON: far more than the socket buffers hold


def test_a_subscriber_that_does_not_read_loses_events_and_is_told_how_many(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "daemon.log", max_bytes=64 << 20)
    path = tmp_path / "control.sock"

    async def handler(op: str, args: dict[str, Any]) -> Any:
        subscription = log.subscribe(capacity=100)
        return Stream(
            hello={"seq": log.last_seq},
            chunks=subscription.batches(),
            close=lambda: log.unsubscribe(subscription),
        )

    async def scenario() -> list[dict[str, Any]]:
        server = ControlServer(path, handler)
        await server.start()
        loop = asyncio.get_running_loop()
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await loop.run_in_executor(None, client.connect, str(path))
        await loop.run_in_executor(None, client.sendall, protocol.encode({"op": "subscribe"}))
        reader = client.makefile("rb")
        hello = json.loads(await loop.run_in_executor(None, reader.readline))
        assert hello == {"ok": True, "data": {"seq": 0}}
        for number in range(EVENTS):  # the client reads nothing meanwhile
            log.emit("task.queued", 1.0, id=f"t{number}", to="x", priority="normal")
            if number % 1000 == 0:
                await asyncio.sleep(0)  # let the server write what the socket takes
        log.emit("daemon.stopped", 2.0)
        log.end_streams()
        received = []
        while True:
            line = await loop.run_in_executor(None, reader.readline)
            if not line:
                break
            received.append(json.loads(line))
        client.close()
        await server.close()
        return received

    received = asyncio.run(scenario())
    log.close()
    delivered = [event for event in received if event["type"] != MISSED]
    missed = sum(event["missed"] for event in received if event["type"] == MISSED)
    assert missed > 0
    assert len(delivered) + missed == EVENTS + 1
    seqs = [event["seq"] for event in delivered]
    assert seqs == sorted(seqs)
    # Every event the daemon logged is in its log, whatever the subscriber lost.
    with (tmp_path / "daemon.log").open("rb") as logged:
        assert sum(1 for _ in logged) == EVENTS + 1
