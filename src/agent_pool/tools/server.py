"""The MCP server of one role: the registry's tools, each call given its ToolContext.

Each tool is registered with a generated signature (one string parameter per
declared `Param`, plus the SDK's request `Context`), so the schema the model sees
comes from the registry. Arguments are passed on unchecked (the schema says
"string", pydantic accepts anything) because the tools check them themselves and
word every refusal in one line. Tools run in a worker thread: they do blocking
file I/O and take file locks.

Importing this module imports the `mcp` SDK (0.6-0.8 s): the CLI imports it lazily.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Final

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError as SdkToolError
from pydantic import WithJsonSchema

from agent_pool import __version__
from agent_pool.errors import AgentPoolError
from agent_pool.tools.context import ToolContext
from agent_pool.tools.registry import SERVER_NAME, ToolResult, ToolSpec, tools_for

# Given the bearer token of the request (None on stdio), the caller's context; None
# refuses the call.
ContextFactory = Callable[[str | None], ToolContext | None]

_INSTRUCTIONS: Final = (
    "agent-pool: your knowledge files (state, errors), your answer to the current task, "
    "notices to other agents, and your own past sessions."
)


def build_server(role: str, ctx_factory: ContextFactory) -> MCPServer:
    """An MCP server named `agent-pool` offering `role`'s tools from the registry."""
    specs = tools_for(role)
    with _logging_untouched():
        server: MCPServer = MCPServer(
            SERVER_NAME, instructions=_INSTRUCTIONS, version=__version__, log_level="WARNING"
        )
    for spec in specs:
        server.add_tool(
            _adapter(spec, role, ctx_factory),
            name=spec.name,
            description=spec.description,
            structured_output=False,
        )
    return server


def serve_stdio(role: str, ctx_factory: ContextFactory) -> None:
    """Serve `role`'s tools on stdin/stdout until the client closes stdin."""
    build_server(role, ctx_factory).run("stdio")


def bearer_token(headers: Mapping[str, str] | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if headers is None:
        return None
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def render_result(result: ToolResult) -> str:
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, indent=1)


def _adapter(spec: ToolSpec, role: str, ctx_factory: ContextFactory) -> Callable[..., str]:
    def call(ctx: Context, **arguments: object) -> str:
        tool_ctx = ctx_factory(bearer_token(ctx.headers))
        if tool_ctx is None or tool_ctx.role != role:
            raise SdkToolError("not authorised: this session's token is unknown or revoked")
        try:
            return render_result(spec.fn(tool_ctx, **arguments))
        except AgentPoolError as exc:
            raise SdkToolError(exc.message) from exc
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise SdkToolError(f"{spec.name} failed: {exc.strerror or exc}{where}") from exc

    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for param in spec.params:
        schema = WithJsonSchema({"type": "string", "description": param.description})
        parameters.append(
            inspect.Parameter(
                param.name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Any, schema]
            )
        )
    # The SDK reads the tool's schema from its signature and finds the Context
    # parameter through its annotations: give it the declared ones.
    target: Any = call
    target.__signature__ = inspect.Signature(parameters, return_annotation=str)
    target.__annotations__ = {item.name: item.annotation for item in parameters} | {"return": str}
    target.__name__ = target.__qualname__ = spec.name
    return call


@contextlib.contextmanager
def _logging_untouched() -> Iterator[None]:
    """Keep MCPServer() from configuring the process's root logger.

    Its constructor calls `logging.basicConfig()`, which would add a handler to the
    host process (the daemon); basicConfig does nothing while the root logger has one.
    """
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        yield
    finally:
        root.removeHandler(guard)
