"""The daemon: composition of mail routing, the task board and sessions, and its lifecycle."""
