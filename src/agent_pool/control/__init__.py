"""The control socket: a private unix socket speaking JSON lines."""
