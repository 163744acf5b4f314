"""Test doubles shipped with the package, for our tests and for users' offline tests.

- `fake_claude_command`: a fast, scriptable fake `claude` executable (daemon logic).
- `ScriptedModelServer` and its `Script`: a local stand-in for the model API that the
  real Claude Code CLI talks to (`find_claude_cli`, `hermetic_claude_env`).
"""

from agent_pool.testing.claude_cli import find_claude_cli, hermetic_claude_env
from agent_pool.testing.fake_claude import fake_claude_command
from agent_pool.testing.model_script import Conversation, Script, ToolCall, Turn, Usage
from agent_pool.testing.model_server import ScriptedModelServer

__all__ = [
    "Conversation",
    "Script",
    "ScriptedModelServer",
    "ToolCall",
    "Turn",
    "Usage",
    "fake_claude_command",
    "find_claude_cli",
    "hermetic_claude_env",
]
