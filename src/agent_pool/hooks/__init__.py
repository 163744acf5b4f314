"""Claude Code hooks for expert sessions: the ownership guard and the report-back check.

A hook process starts for every write tool call, so this package imports nothing at
package level: `python -P -m agent_pool.hooks` must load only `json`, `os` and `time`.
Import the pieces from their modules (`hooks.guard`, `hooks.report`, `hooks.settings`).
"""
