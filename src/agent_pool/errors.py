"""One error hierarchy for the whole package.

Every error carries the fields a caller needs and renders as one clear line. The CLI
maps each class to an exit code: 2 for usage and configuration mistakes, 1 for an
operation that failed.
"""

from __future__ import annotations

from pathlib import Path

EXIT_FAILURE = 1
EXIT_USAGE = 2


class AgentPoolError(Exception):
    """Base of every error agent-pool raises on purpose."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(AgentPoolError):
    """The command line asked for something impossible (a bad argument or name)."""

    exit_code = EXIT_USAGE


class ConfigError(AgentPoolError):
    """A configuration file is malformed or invalid."""

    exit_code = EXIT_USAGE

    def __init__(self, path: Path, key: str | None, problem: str) -> None:
        where = f"{path}: {key}" if key else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


class PoolNotFoundError(AgentPoolError):
    """No pool could be found from the place the user pointed at."""

    exit_code = EXIT_USAGE


class InvalidNameError(UsageError):
    """A name (expert, role, message id) does not match the allowed pattern."""

    def __init__(self, kind: str, value: str, problem: str) -> None:
        super().__init__(f"invalid {kind} {value!r}: {problem}")
        self.kind = kind
        self.value = value
        self.problem = problem


class UnknownRecipientError(UsageError):
    """Mail was addressed to a name this pool does not know."""

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none"
        super().__init__(f"unknown recipient {name!r} (known: {listing})")
        self.name = name
        self.known = known


class MailError(AgentPoolError):
    """A mail file or message could not be parsed or validated."""

    def __init__(self, problem: str, source: str | None = None) -> None:
        super().__init__(f"{source}: {problem}" if source else problem)
        self.problem = problem
        self.source = source


class DuplicateMailError(AgentPoolError):
    """A message with this id has already been posted."""

    def __init__(self, message_id: str, path: Path) -> None:
        super().__init__(f"a message with id {message_id!r} already exists: {path}")
        self.message_id = message_id
        self.path = path


class PoolLayoutError(AgentPoolError):
    """The pool's folders could not be created or are not usable."""
