"""Hot reload: config edits and expert folders take effect without a restart."""

from __future__ import annotations

import shutil

from tests.harness import EventCollector, Pool, wait_until


def _active(pool: Pool, *task_ids: str) -> int:
    count = 0
    for task_id in task_ids:
        record = pool.task(task_id)
        count += record is not None and record.status == "active"
    return count


def test_a_good_edit_applies_without_a_restart(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_concurrent = 1\n")
    pool.start()
    stream = EventCollector(pool)
    try:
        first = pool.post("backend", "one\nfake: sleep 30")
        second = pool.post("frontend", "two\nfake: sleep 30")
        pool.wait_status(first, "active")
        pool.wait_status(second, "pending")  # routed, and held back by the cap
        pool.configure("[defaults]\nmax_concurrent = 2\n")
        reloaded = stream.wait_for(lambda e: e["type"] == "config.reloaded")
        assert reloaded["changed"] == ["defaults.max_concurrent"]
        pool.wait_status(second, "active")
        assert _active(pool, first, second) == 2
    finally:
        stream.close()


def test_an_invalid_edit_is_refused_and_the_old_config_kept(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_concurrent = 1\n")
    pool.start()
    stream = EventCollector(pool)
    try:
        first = pool.post("backend", "one\nfake: sleep 30")
        second = pool.post("frontend", "two\nfake: sleep 30")
        pool.wait_status(first, "active")
        pool.wait_status(second, "pending")
        pool.configure("[defaults]\nmax_concurrent = 0\n")
        rejected = stream.wait_for(lambda e: e["type"] == "config.rejected")
        assert "pool.toml" in rejected["error"]
        assert "defaults.max_concurrent" in rejected["error"]
        assert pool.status()["state"] == "running"
        assert pool.task(second).status == "pending"  # type: ignore[union-attr]
        pool.configure("[defaults\nmax_concurrent = 2\n")  # not even TOML
        second_rejection = stream.wait_for(
            lambda e: e["type"] == "config.rejected" and "invalid TOML" in e["error"]
        )
        assert second_rejection["seq"] > rejected["seq"]
        pool.configure("[defaults]\nmax_concurrent = 2\n")  # fixed: now it applies
        stream.wait_for(lambda e: e["type"] == "config.reloaded")
        pool.wait_status(second, "active")
    finally:
        stream.close()


def test_mail_for_an_expert_created_while_running_is_delivered(pool: Pool) -> None:
    pool.start()
    stream = EventCollector(pool)
    try:
        task = pool.post("newbie", "welcome aboard")
        dead = stream.wait_for(lambda e: e["type"] == "mail.dead_letter", timeout=10)
        assert "unknown recipient 'newbie'" in dead["reason"]
        assert pool.status()["dead_letters"] == 1
        result = pool.cli.run("init", "--expert", "newbie")
        assert result.code == 0, result.err
        added = stream.wait_for(lambda e: e["type"] == "expert.added")
        assert added["name"] == "newbie"
        stream.wait_for(lambda e: e["type"] == "mail.redelivered")
        done = pool.wait_status(task, "completed")
        assert done.to == "newbie"
        assert pool.status()["dead_letters"] == 0
        assert "newbie" in [agent["name"] for agent in pool.status()["experts"]]
    finally:
        stream.close()


def test_an_expert_declared_in_pool_toml_is_picked_up(pool: Pool) -> None:
    pool.start()
    stream = EventCollector(pool)
    try:
        pool.configure('[experts.docs]\ndescription = "writes the docs"\n')
        added = stream.wait_for(lambda e: e["type"] == "expert.added" and e["name"] == "docs")
        assert added["kind"] == "expert"
        task = pool.post("docs", "write the README")
        pool.wait_status(task, "completed")
    finally:
        stream.close()


def test_a_removed_expert_folder_is_announced(pool: Pool) -> None:
    pool.start()
    stream = EventCollector(pool)
    try:
        shutil.rmtree(pool.layout.expert_dir("frontend"))
        removed = stream.wait_for(lambda e: e["type"] == "expert.removed")
        assert removed["name"] == "frontend"
        wait_until(
            lambda: "frontend" not in [agent["name"] for agent in pool.status()["experts"]],
            10,
            "status to drop frontend",
        )
    finally:
        stream.close()
