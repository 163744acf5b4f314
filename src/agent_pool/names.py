"""Names and ids: the only strings that may ever become part of a path.

Every name that reaches the filesystem (an expert folder, an inbox, a mail file) is
checked here first. Validation is a whitelist regex with no normalisation, so `..`,
`/`, upper case, spaces and NUL can never slip through.
"""

from __future__ import annotations

import re
from typing import Final

from agent_pool.errors import InvalidNameError

NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MESSAGE_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

ROLE_NAMES: Final = frozenset({"architect", "researcher", "concierge"})
# Names the daemon uses for itself or keeps for later features (`auto` routing).
# They can never be expert names, so mail addressed to them is never ambiguous.
RESERVED_NAMES: Final = ROLE_NAMES | frozenset({"auto", "daemon", "pool", "all", "user"})


def is_valid_name(value: str) -> bool:
    return NAME_PATTERN.fullmatch(value) is not None


def check_name(value: str, kind: str = "name") -> str:
    """Return `value` if it is a valid expert or role name, else raise."""
    if not isinstance(value, str):
        raise InvalidNameError(kind, repr(value), "must be a string")
    if NAME_PATTERN.fullmatch(value) is None:
        raise InvalidNameError(
            kind, value, "use 1-64 characters: a-z, 0-9, '-' and '_', starting with a-z or 0-9"
        )
    return value


def check_expert_name(value: str) -> str:
    """Return `value` if it may name an expert: a valid name that no role or daemon uses."""
    check_name(value, "expert name")
    if value in RESERVED_NAMES:
        raise InvalidNameError("expert name", value, "this name is reserved")
    return value


def is_valid_message_id(value: str) -> bool:
    # `..` alone would match the pattern's character set but never its first character;
    # a dot-only or dot-leading id is impossible, so ids are always safe file stems.
    return MESSAGE_ID_PATTERN.fullmatch(value) is not None


def check_message_id(value: str, kind: str = "message id") -> str:
    if not isinstance(value, str) or MESSAGE_ID_PATTERN.fullmatch(value) is None:
        raise InvalidNameError(
            kind,
            value if isinstance(value, str) else repr(value),
            "use 1-128 characters: A-Z, a-z, 0-9, '.', '-' and '_', "
            "starting with a letter or digit",
        )
    return value
