"""Where the pool tools listen, and how the tools process says it is listening.

Shared by the daemon (which starts the tools process and hands sessions its URL) and
the tools process itself; imports nothing, so the daemon can use it without the SDK.
"""

from __future__ import annotations

from typing import Final

HOST: Final = "127.0.0.1"
MCP_PATH: Final = "/mcp"
_READY: Final = "ready"


def tools_url(port: int) -> str:
    return f"http://{HOST}:{port}{MCP_PATH}"


def ready_line(port: int) -> str:
    """The one line the tools process writes on stdout once it accepts connections."""
    return f"{_READY} {port}\n"


def parse_ready_line(line: str) -> int | None:
    """The port announced by `ready_line`, or None for anything else."""
    word, _, port = line.strip().partition(" ")
    if word != _READY or not (port.isascii() and port.isdigit()):
        return None
    number = int(port)
    return number if 0 < number < 65536 else None
