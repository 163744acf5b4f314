"""Path globs for `owns`: `**` spans folders, `*` and `?` stay inside one folder.

Patterns are relative to the project folder and matched against a normalised POSIX
path relative to it. `fnmatch` is no use here: its `*` crosses `/`, so `src/*.py`
would also own `src/deep/x.py`.

- `**` as a whole segment matches zero or more folders (`src/**/x.py` owns
  `src/x.py` and `src/a/b/x.py`); a trailing `**` matches everything inside the
  folder but not the folder's own name (`src/**` owns `src/a.py`, not `src`).
- `*` matches any run of characters within one segment (dotfiles included), `?`
  one character, `[abc]` / `[!abc]` / `[a-z]` a set; none of them matches `/`.
- `**` inside a segment (`a**b`) is an ordinary `*`; a trailing `/` means the
  folder's contents (`src/` is `src/**`); `./` and repeated slashes are ignored.
- Matching is case-sensitive and anchored at both ends: `*.py` owns `a.py` at the
  project root only.
"""

from __future__ import annotations

import re
from functools import lru_cache

# `typing` costs a hook several milliseconds at start-up; only the type checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

# Matches nothing: a pattern that cannot be compiled owns no file (fail closed).
_NOTHING: Final = re.compile(r"(?!)")


def glob_to_regex(pattern: str) -> str:
    """The regular expression (without anchors) equivalent to `pattern`."""
    segments = [s for s in pattern.split("/") if s not in {"", "."}]
    if pattern.endswith("/") and segments and segments[-1] != "**":
        segments.append("**")
    parts: list[str] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment == "**":
            # Zero or more whole folders in the middle; one or more segments at the end.
            parts.append(r"(?:[^/]+/)*" if index < last else r"[^/]+(?:/[^/]+)*")
        else:
            parts.append(_segment_to_regex(segment) + ("/" if index < last else ""))
    return "".join(parts)


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled; a malformed one (say `[z-a]`) matches nothing."""
    try:
        return re.compile(glob_to_regex(pattern))
    except re.error:
        return _NOTHING


def match_glob(pattern: str, relative_path: str) -> bool:
    """True if the project-relative POSIX path `relative_path` matches `pattern`."""
    return compile_glob(pattern).fullmatch(relative_path) is not None


def match_any(patterns: Sequence[str], relative_path: str) -> bool:
    return any(match_glob(pattern, relative_path) for pattern in patterns)


def _segment_to_regex(segment: str) -> str:
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        char = segment[i]
        if char == "*":
            while i + 1 < n and segment[i + 1] == "*":
                i += 1
            out.append(r"[^/]*")
        elif char == "?":
            out.append(r"[^/]")
        elif char == "[":
            end = _class_end(segment, i)
            if end < 0:
                out.append(re.escape(char))
            else:
                out.append(_class_to_regex(segment[i + 1 : end]))
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the `]` closing the set opened at `start`, or -1 if it is not closed."""
    i = start + 1
    if i < len(segment) and segment[i] == "!":
        i += 1
    # A `]` right after `[` or `[!` is a member, as in fnmatch and the shell.
    if i < len(segment) and segment[i] == "]":
        i += 1
    return segment.find("]", i)


def _class_to_regex(body: str) -> str:
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    # Escape everything the regex engine treats specially inside a set, keep `-` ranges.
    escaped = "".join("\\" + c if c in "\\^[]&~|" else c for c in body)
    # The lookahead keeps a range such as `[+-0]` from matching `/`.
    return r"(?!/)[" + ("^" if negate else "") + escaped + "]"
