"""Every event type the daemon emits, with the fields it carries (the stream's contract).

`EventLog.emit` refuses a type missing here, and `docs/events.md` is checked against
this table by a test, so the log, the `subscribe` stream and the docs cannot drift.
Every event also has `seq` (per daemon run, from 1), `time` (unix seconds) and `type`.
"""

from __future__ import annotations

from typing import Final

EVENT_TYPES: Final[dict[str, str]] = {
    # daemon lifecycle
    "daemon.started": "pid, pool: the daemon is up and its socket answers",
    "daemon.draining": "running: stop was requested; running sessions may finish",
    "daemon.stopped": "the daemon is about to exit",
    "daemon.error": "error: an unexpected error in background work (the daemon goes on)",
    "tools.port_changed": "adopted: the tools endpoint came back on another port",
    "tools.restarted": "exit_code, port, previous_port: the tools process died and was restarted",
    "config.reloaded": "changed (list of keys): pool.toml or config.toml was re-read",
    "config.rejected": "error: an edited config file is invalid; the old config is kept",
    "expert.added": "name, kind: a new expert folder or declaration was picked up",
    "expert.removed": "name, queued: an expert disappeared; its queued tasks wait for it",
    "upkeep.done": "logs_archived, logs_deleted, index_rows_dropped, tasks_archived",
    # mail
    "mail.queued": "id, to, mail_type: a task or question was recorded and delivered",
    "mail.delivered": "id, to, mail_type: a response or notice was delivered",
    "mail.duplicate": "id, file: an identical re-post was dropped",
    "mail.dead_letter": "file, moved_to, reason: mail that cannot be delivered",
    "mail.redelivered": "file, reason: dead mail sent back to the postoffice for a new expert",
    # tasks
    "task.queued": "id, to, priority: ready to run once its expert is free",
    "task.blocked": "id, to, waits_on: waiting for dependencies",
    "task.unblocked": "id, cause: its last dependency completed",
    "task.started": "id, to, attempt: a session was spawned for it",
    "task.adopted": "id, to, pid: a session left running by an earlier daemon",
    "task.completed": "id, cost_usd: the session ended cleanly and reported back",
    "task.retry": "id, reason, attempt, ready_at: the attempt failed; it runs again later",
    "task.failed": "id, reason, needs_attention: failed for good (or a dependency failed)",
    "task.retried": "id, by: a failed task was queued again by a user",
    "task.cancelled": "id, by, cascaded",
    "task.requeued": "id, reason: interrupted (not failed) and back in the queue",
    "task.recovered": "id: a session that ended while no daemon watched, judged from its log",
    "task.handoff": "id, note: the session handed over; a fresh one continues",
    "task.fallback_response": "id, to: the daemon answered with the session's final text",
    "cost.updated": "id, to, cost_usd, agent_cost_usd, pool_cost_usd",
    # live session output
    "session.tool_call": "id, to, tool, input: the running session called a tool",
    "session.text": "id, to, text: the running session wrote text",
    "session.result": "id, to, subtype, is_error, cost_usd, turns",
    "session.stopping": "id, reason: a timeout or stall; the session is being stopped",
    "session.stopped": "id, reason: the daemon stopped a session",
    "curation.requested": "agent, trimmed: knowledge outgrew its prompt budget",
    # only in the subscribe stream, never in the log
    "stream.missed": "missed: events this subscriber lost because it read too slowly",
}
