"""The prompt a session starts from: knowledge, notices, contracts, then the task.

`build_prompt` is pure: it trims each knowledge file to its budget and frames the
sections. `load_prompt_inputs` is the thin I/O part that reads an agent's folder.

Trimming policy (files are cut at line boundaries, never inside a UTF-8 character):
- identity.md, state.md and the pool overlay keep their *beginning*: they are
  curated, most important first, so the tail is what matters least.
- errors.md keeps its *end*: entries are appended, so the end holds the latest.
- Only when no line boundary leaves anything to keep (one huge line) is a file cut
  inside a line, at a character boundary.
A visible marker says what was cut, and `BuiltPrompt.trimmed` names the files so the
daemon can ask for curation.

Section delimiters are XML-like tags. Nothing inside is escaped (the model must see
the files as they are); instead, when a file contains the closing tag of its own
section, that section gets a numbered tag (`<state-2>` ... `</state-2>`) that the
file does not contain, so the end of every section stays unambiguous. Sections are
never nested, so only a section's own closing tag matters.

Notices: every `notify` mail lying in the agent's `inbox/` (top level) is unread.
`load_prompt_inputs` returns their paths; once the task's session has finished the
daemon calls `mark_notices_read(loaded.read_paths(built))`, which moves the notices
the prompt showed to `inbox/read/`. No timestamps are compared, so clock skew or a
late delivery can never hide a notice; a failed attempt that is retried sees the
same notices again; and notices held back by the budget come with the next task.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

from agent_pool.errors import MailError
from agent_pool.mail import DEFAULT_MAX_BYTES, MessageType, parse_mail
from agent_pool.names import is_valid_message_id

if TYPE_CHECKING:
    from agent_pool.config.model import DefaultsSection

KIB: Final = 1024
# Files are read up to this size; a bigger one is read from the end the trim keeps.
READ_CAP: Final = 4 * 1024 * KIB
_OVERLAY_NAME: Final = "pool overlay state.md"
# Notices shown in one prompt; each adds about 60 bytes of framing.
MAX_NOTICES: Final = 6
# A notice or contract squeezed below this many bytes is left out, not shown as a stub.
_MIN_QUOTE_BYTES: Final = 256
_READ_DIR: Final = "read"
# Cheap pre-filter so only notify mail is fully parsed: an inbox also holds tasks.
_NOTIFY_HINT: Final = re.compile(rb"(?m)^type[ \t]*:[ \t]*[\"']?notify\b")
_MAIL_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class TaskLike(Protocol):
    """What the prompt needs of a task; `board.TaskRecord` fits as it is."""

    @property
    def id(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def contracts(self) -> Sequence[str]: ...
    @property
    def depends_on(self) -> Sequence[str]: ...
    @property
    def body(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptTask:
    """A plain task for callers (and tests) that have no board record."""

    id: str
    sender: str
    body: str
    type: str = "task"
    priority: str = "normal"
    contracts: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()


class Notice(NamedTuple):
    sender: str
    id: str
    body: str


class ContractText(NamedTuple):
    id: str
    text: str | None  # None: no such contract (or an id that cannot name one)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptBudgets:
    """Byte budgets of what the prompt quotes; the task body itself is never cut."""

    identity_max_bytes: int = 16 * KIB
    state_max_bytes: int = 16 * KIB  # state.md, and the pool overlay separately
    errors_max_bytes: int = 8 * KIB
    notices_max_bytes: int = 8 * KIB  # all notice bodies together
    contracts_max_bytes: int = 32 * KIB  # all contract texts together

    @classmethod
    def from_defaults(cls, defaults: DefaultsSection, **overrides: int) -> PromptBudgets:
        return cls(
            state_max_bytes=overrides.pop("state_max_bytes", defaults.state_max_bytes),
            errors_max_bytes=overrides.pop("errors_max_bytes", defaults.errors_max_bytes),
            **overrides,
        )


DEFAULT_BUDGETS: Final = PromptBudgets()


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptInputs:
    """Everything a prompt is made of, already read from disk."""

    agent: str
    task: TaskLike
    role: str = "expert"  # "expert", or the role name for a role's session
    identity: str = ""
    state: str = ""
    overlay: str | None = None  # a shared expert's knowledge of this pool
    errors: str = ""
    notices: Sequence[Notice] = ()  # oldest first
    contracts: Sequence[ContractText] = ()
    budgets: PromptBudgets = DEFAULT_BUDGETS


@dataclass(frozen=True, slots=True)
class BuiltPrompt:
    text: str
    # One line per knowledge file over its budget: "state.md: 40960 bytes, budget 16384".
    trimmed: list[str] = field(default_factory=list)
    # Bytes the pool added around the quoted files and the task (QUALITY: <= 2 KB).
    framing_bytes: int = 0
    # Ids of the notices shown; the others wait for the next prompt.
    notices_shown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Trim:
    """One text fitted to a byte budget."""

    text: str  # what is kept
    size: int  # bytes before
    cut_lines: int  # lines removed; a line cut in the middle counts as one
    mid_line: bool = False  # no line boundary was usable: cut at a character

    @property
    def trimmed(self) -> bool:
        return self.cut_lines > 0


# -- trimming (pure) ------------------------------------------------------------


def keep_head(text: str, budget: int) -> Trim:
    """The beginning of `text` within `budget` UTF-8 bytes, ending at a line end."""
    raw = _utf8(text)
    if len(raw) <= budget:
        return Trim(text, len(raw), 0)
    # A newline right after the budget means raw[:budget] ends exactly at a line end.
    cut = budget if raw[budget : budget + 1] == b"\n" else raw.rfind(b"\n", 0, budget) + 1
    mid_line = not raw[:cut].strip()
    if mid_line:
        cut = _char_start(raw, budget)
    kept = raw[:cut]
    removed = _count_lines(raw) - _count_lines(kept) + (mid_line and bool(kept))
    return Trim(kept.decode("utf-8", "replace"), len(raw), removed, mid_line)


def keep_tail(text: str, budget: int) -> Trim:
    """The end of `text` within `budget` UTF-8 bytes, starting at a line start."""
    raw = _utf8(text)
    if len(raw) <= budget:
        return Trim(text, len(raw), 0)
    start = len(raw) - budget
    cut = start if raw[start - 1 : start] == b"\n" else raw.find(b"\n", start) + 1
    mid_line = cut == 0 or not raw[cut:].strip()
    if mid_line:
        cut = _char_start(raw, start, forward=True)
    kept = raw[cut:]
    removed = _count_lines(raw) - _count_lines(kept) + (mid_line and bool(kept))
    return Trim(kept.decode("utf-8", "replace"), len(raw), removed, mid_line)


def _count_lines(raw: bytes) -> int:
    return raw.count(b"\n") + (bool(raw) and not raw.endswith(b"\n"))


def _utf8(text: str) -> bytes:
    # Lone surrogates (never produced by our readers) become "?" rather than raising.
    return text.encode("utf-8", "replace")


def _char_start(raw: bytes, pos: int, *, forward: bool = False) -> int:
    """`pos` moved off UTF-8 continuation bytes, so no character is split."""
    step = 1 if forward else -1
    while 0 < pos < len(raw) and raw[pos] & 0xC0 == 0x80:
        pos += step
    return pos


def human_size(size: int) -> str:
    if size < KIB:
        return f"{size} bytes"
    kib = size / KIB
    return f"{kib:.0f} KiB" if kib >= 10 or kib.is_integer() else f"{kib:.1f} KiB"


# -- assembly (pure) ------------------------------------------------------------


class _Writer:
    """Collects the prompt's parts and counts which bytes are quoted content."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.content_bytes = 0

    def frame(self, text: str) -> None:
        self.parts.append(text)

    def quote(self, text: str) -> None:
        self.parts.append(text)
        self.content_bytes += len(_utf8(text))

    def section(
        self, tag: str, body: str, attrs: str = "", *, before: str = "", after: str = ""
    ) -> None:
        """`<tag attrs>` body `</tag>`, the tag numbered if the body contains its end.

        `before` and `after` are framing lines (trim markers) inside the section.
        """
        tag = _free_tag(tag, body)
        self.frame(f"<{tag}{attrs}>\n{before}")
        self.quote(body)
        self.frame(f"{after}\n</{tag}>\n\n")


def build_prompt(inputs: PromptInputs) -> BuiltPrompt:
    """The prompt text, which files were trimmed, and how many bytes are framing."""
    out = _Writer()
    budgets = inputs.budgets
    trimmed: list[str] = []
    kind = "an expert" if inputs.role == "expert" else f"the {_attr(inputs.role)}"
    out.frame(
        f"You are {_attr(inputs.agent)}, {kind} in an agent-pool, started fresh for the one "
        "task at the end. First, your knowledge:\n\n"
    )
    files = [
        ("identity", "identity.md", inputs.identity, budgets.identity_max_bytes),
        ("state", "state.md", inputs.state, budgets.state_max_bytes),
        ("pool-state", _OVERLAY_NAME, inputs.overlay or "", budgets.state_max_bytes),
        ("errors", "errors.md", inputs.errors, budgets.errors_max_bytes),
    ]
    for tag, name, text, budget in files:
        _knowledge(out, tag, text, name=name, budget=budget, trimmed=trimmed)
    shown = _notices(out, inputs.notices, budgets.notices_max_bytes)
    _contracts(out, inputs.contracts, budgets.contracts_max_bytes)
    _task(out, inputs.task)
    state_trimmed = any(line.startswith(("state.md:", _OVERLAY_NAME)) for line in trimmed)
    out.frame(_closing(inputs.role, budgets, state_trimmed=state_trimmed))
    text = "".join(out.parts)
    return BuiltPrompt(text, trimmed, len(_utf8(text)) - out.content_bytes, shown)


def _knowledge(
    out: _Writer, tag: str, text: str, *, name: str, budget: int, trimmed: list[str]
) -> None:
    text = text.strip()
    if not text:
        return
    from_end = tag == "errors"  # errors.md is appended to: its end is the news
    fitted = keep_tail(text, budget) if from_end else keep_head(text, budget)
    if not fitted.trimmed:
        out.section(tag, text)
        return
    trimmed.append(f"{name}: {fitted.size} bytes, budget {budget}")
    marker = (
        f"[... {fitted.cut_lines}{' older' if from_end else ''} lines trimmed"
        f"{' (one cut mid-line)' if fitted.mid_line else ''}: {name} is "
        f"{human_size(fitted.size)}, the budget is {human_size(budget)}; "
        "curation requested ...]"
    )
    body = fitted.text.strip("\n")
    if from_end:
        out.section(tag, body, before=marker + "\n")
    else:
        out.section(tag, body, after="\n" + marker)


def _notices(out: _Writer, notices: Sequence[Notice], budget: int) -> tuple[str, ...]:
    """The latest notices that fit (the newest get the budget first), oldest first."""
    shown: list[tuple[Notice, Trim]] = []
    left = budget
    for notice in reversed(notices):
        if len(shown) >= MAX_NOTICES or left < _MIN_QUOTE_BYTES:
            break
        fitted = keep_head(notice.body.strip(), left)
        shown.append((notice, fitted))
        left -= len(_utf8(fitted.text))
    if not shown:
        return ()
    out.frame("Notices sent to you since your last task (no reply needed):\n\n")
    omitted = len(notices) - len(shown)
    if omitted:
        out.frame(f"[... {omitted} older notices held back (over budget) for your next task]\n\n")
    for notice, fitted in reversed(shown):
        attrs = f' from="{_attr(notice.sender)}" id="{_attr(notice.id)}"'
        after = f"\n[... {fitted.cut_lines} lines cut]" if fitted.trimmed else ""
        out.section("notice", fitted.text.strip("\n"), attrs, after=after)
    return tuple(notice.id for notice, _ in reversed(shown))


def _contracts(out: _Writer, contracts: Sequence[ContractText], budget: int) -> None:
    if contracts:
        out.frame("Contracts of the task (agreed interfaces; follow them):\n\n")
    left = budget
    for contract in contracts:
        ident = _attr(contract.id)
        where = f".agent-pool/contracts/{ident}.md"
        text = None if contract.text is None else contract.text.strip()
        if not text:
            problem = "is missing (no such contract)" if text is None else "is empty"
            out.frame(f"[contract {ident} {problem}]\n\n")
            continue
        if len(_utf8(text)) > left < _MIN_QUOTE_BYTES:
            out.frame(f"[contract {ident} left out (over budget): see {where}]\n\n")
            continue
        fitted = keep_head(text, left)
        left -= len(_utf8(fitted.text))
        after = f"\n[... {fitted.cut_lines} lines cut: see {where}]"
        out.section(
            "contract",
            fitted.text.strip("\n"),
            f' id="{ident}"',
            after=after if fitted.trimmed else "",
        )


def _task(out: _Writer, task: TaskLike) -> None:
    attrs = (
        f' id="{_attr(task.id)}" from="{_attr(task.sender)}" type="{_attr(task.type)}"'
        f' priority="{_attr(task.priority)}"'
    )
    if task.contracts:
        attrs += f' contracts="{_attr(" ".join(task.contracts))}"'
    if task.depends_on:
        attrs += f' depends-on="{_attr(" ".join(task.depends_on))}"'
    out.section("task", task.body.strip(), attrs)


def _closing(role: str, budgets: PromptBudgets, *, state_trimmed: bool) -> str:
    # The knowledge tools are the MCP server's (`mcp__agent-pool__<tool>`); keep in step.
    text = (
        "Report back once with mcp__agent-pool__send_response (what you did or found). "
        "Before you finish, keep your knowledge current: "
        "mcp__agent-pool__update_state (state.md: what is true now, under "
        f"{human_size(budgets.state_max_bytes)}), mcp__agent-pool__append_error (a mistake "
        "or trap to avoid next time)"
    )
    if role == "expert":
        text += ", mcp__agent-pool__flag_promotion (a recurring pattern for identity.md)"
    text += ".\n"
    if state_trimmed:
        text += "Your state is over its budget (trimmed above): make it shorter.\n"
    return text


def _free_tag(tag: str, body: str) -> str:
    """`tag`, or `tag-N` for the first N whose closing tag `body` does not contain."""
    lowered = body.lower()
    candidate, number = tag, 1
    while f"</{candidate}" in lowered:
        number += 1
        candidate = f"{tag}-{number}"
    return candidate


def _attr(value: str) -> str:
    # Ids and names are validated already; this only keeps a stray value on one line.
    return " ".join(value.split()).replace('"', "'")


# -- loading (I/O) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedInputs:
    inputs: PromptInputs
    # The unread notify mails read into `inputs`, by id.
    notice_paths: Mapping[str, Path] = field(default_factory=dict)
    # Notices delivered again after they were read (an identical re-post): not shown.
    stale_paths: tuple[Path, ...] = ()

    def read_paths(self, built: BuiltPrompt) -> list[Path]:
        """The notice files to `mark_notices_read` once the session has finished."""
        shown = [self.notice_paths[ident] for ident in built.notices_shown]
        return shown + list(self.stale_paths)


def load_prompt_inputs(
    folder: Path,
    task: TaskLike,
    *,
    agent: str,
    contracts_dir: Path,
    role: str = "expert",
    overlay_dir: Path | None = None,
    inbox_dir: Path | None = None,
    budgets: PromptBudgets = DEFAULT_BUDGETS,
    max_mail_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedInputs:
    """Read an agent's knowledge files, unread notices and the task's contracts.

    `folder` holds identity.md, state.md and errors.md (for a shared expert: its
    user-level folder). `overlay_dir` is a shared expert's pool overlay
    (`shared-state/<name>/`), whose state.md is shown after the user-level state.
    `inbox_dir` defaults to the pool-side folder's `inbox/`: the overlay's when there
    is one, else `folder`'s. Missing files are simply empty; nothing here raises for
    a missing or unreadable file.
    """
    pool_side = overlay_dir if overlay_dir is not None else folder
    notices, paths, stale = _load_notices(inbox_dir or pool_side / "inbox", max_mail_bytes)
    overlay = None if overlay_dir is None else _read_text(overlay_dir / "state.md") or ""
    inputs = PromptInputs(
        agent=agent,
        role=role,
        task=task,
        identity=_read_text(folder / "identity.md") or "",
        state=_read_text(folder / "state.md") or "",
        overlay=overlay,
        errors=_read_text(folder / "errors.md", from_end=True) or "",
        notices=notices,
        contracts=[_load_contract(contracts_dir, ident) for ident in task.contracts],
        budgets=budgets,
    )
    return LoadedInputs(inputs, paths, tuple(stale))


def mark_notices_read(paths: Iterable[Path]) -> int:
    """Move notices into their inbox's `read/` folder; returns how many were moved.

    Safe to repeat: a notice already moved is skipped.
    """
    moved = 0
    for path in paths:
        target = path.parent / _READ_DIR
        try:
            target.mkdir(exist_ok=True)
            path.replace(target / path.name)
        except FileNotFoundError:
            continue
        moved += 1
    return moved


def _read_text(path: Path, *, from_end: bool = False) -> str | None:
    """A file's text; None when missing, a one-line note when unreadable."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if from_end and size > READ_CAP:
                handle.seek(size - READ_CAP)
            data = handle.read(READ_CAP)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"[{path.name} could not be read: {exc.strerror or exc}]"
    return data.decode("utf-8", "replace").removeprefix("\ufeff")


def _load_contract(contracts_dir: Path, ident: str) -> ContractText:
    if not is_valid_message_id(ident):
        return ContractText(ident, None)
    return ContractText(ident, _read_text(contracts_dir / f"{ident}.md"))


def _load_notices(inbox: Path, max_bytes: int) -> tuple[list[Notice], dict[str, Path], list[Path]]:
    """Unread notices (oldest first), their files by id, and stale re-deliveries."""
    found: list[tuple[float, str, Notice, Path]] = []
    stale: list[Path] = []
    try:
        entries = list(os.scandir(inbox))
    except (FileNotFoundError, NotADirectoryError):
        return [], {}, []
    for entry in entries:
        if entry.name.startswith(".") or not entry.name.endswith(".md"):
            continue
        mail = _read_mail(Path(entry.path), max_bytes)
        if mail is None or _NOTIFY_HINT.search(mail[0]) is None:
            continue
        data, mtime = mail
        try:
            message = parse_mail(data, source=entry.path, max_bytes=max_bytes)
        except MailError:
            continue
        if message.type is not MessageType.NOTIFY:
            continue
        path = Path(entry.path)
        if (inbox / _READ_DIR / entry.name).exists():
            # An identical re-post delivered again after it was read: not news.
            stale.append(path)
            continue
        when = message.timestamp.timestamp() if message.timestamp else mtime
        found.append((when, message.id, Notice(message.sender, message.id, message.body), path))
    found.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in found], {item[1]: item[3] for item in found}, stale


def _read_mail(path: Path, max_bytes: int) -> tuple[bytes, float] | None:
    """A regular mail file's bytes and mtime (symlinks and oversized files are ignored)."""
    try:
        fd = os.open(path, _MAIL_OPEN_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        return handle.read(max_bytes + 1), info.st_mtime
