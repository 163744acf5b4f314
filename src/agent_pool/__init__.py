"""agent-pool: a process supervisor for a pool of headless Claude Code expert sessions."""

__version__ = "0.1.0"
