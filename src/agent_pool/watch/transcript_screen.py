"""The transcript of one task, in a modal screen over the dashboard (textual)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, RichLog, Static


class TranscriptScreen(ModalScreen[None]):
    """A task's transcript, every attempt, scrollable; escape closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
    ]
    DEFAULT_CSS = """
    TranscriptScreen { align: center middle; }
    #transcript-box { width: 95%; height: 90%; border: thick $accent; background: $surface; }
    #transcript-title { height: 1; text-style: bold; padding: 0 1; }
    #transcript { height: 1fr; }
    """

    def __init__(self, task_id: str, lines: list[str]) -> None:
        super().__init__()
        self.task_id = task_id
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical(id="transcript-box"):
            yield Static(
                Text(f"transcript of {self.task_id} (escape closes)"), id="transcript-title"
            )
            yield RichLog(id="transcript", wrap=True, markup=False, auto_scroll=False)
        yield Footer()

    def on_mount(self) -> None:
        log = self.query_one("#transcript", RichLog)
        for line in self.lines:
            log.write(Text(line))
        log.focus()

    def action_close(self) -> None:
        self.dismiss(None)
