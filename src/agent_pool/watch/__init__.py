"""`agent-pool watch`: the live dashboard and its `--plain` line stream.

`view` and `plain` are pure (data in, text out); `source` and `follower` do the I/O
(control socket, read-only board, session logs) without knowing about the screen;
`app` is the textual application. Nothing here is imported by other commands, so
textual is only loaded when `watch` runs.
"""
