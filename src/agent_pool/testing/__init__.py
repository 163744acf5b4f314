"""Test helpers shipped with the package: a fast, scriptable fake `claude`."""

from agent_pool.testing.fake_claude import fake_claude_command

__all__ = ["fake_claude_command"]
