"""The pool's MCP tools: one registry of tools, a stdio server and an HTTP server.

`registry` declares every tool once (name, description, parameters, roles, code) and
yields each role's `--allowedTools`; `context` says who calls; `knowledge`,
`messaging` and `history` implement the tools; `server` and `http` serve them with
the `mcp` SDK. Only `server` and `http` import the SDK, which is slow to import.
"""
