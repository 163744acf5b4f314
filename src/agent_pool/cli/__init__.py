"""The `agent-pool` command line. Heavy modules are imported inside commands so that
`agent-pool --version` and `--help` stay fast."""
