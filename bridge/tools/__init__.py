"""The tool table: every tool the bridge offers, with its parameters declared once.

A tool is a function `(input clips, resolved params, context) -> output clips`. The server,
the CLI, the `models` reply and the Max for Live builder all read `TOOLS`; nothing else lists
tool names or parameter ranges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from bridge.clip import Clip
from bridge.params import Param, resolve


class ToolError(Exception):
    """A failure the user can act on; `code` is the protocol's error code."""

    code = "tool_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class ModelNotInstalled(ToolError):
    code = "model_not_installed"


class Cancelled(ToolError):
    code = "cancelled"


@dataclass
class ToolContext:
    """What a running tool may use besides its inputs: the models, and a way to report progress.

    `report` is also the cancellation point: long loops call it, and a cancelled or timed-out
    request stops there instead of burning the CPU for a reply nobody will read. `notice` is
    for what the user should know about a result that is not an error (the top line of a
    chord clip was used, a variation stayed empty); the server sends notices with the reply
    and the CLI prints them.
    """

    models: Any  # bridge.model_store.ModelStore; typed loosely to keep this module import-light
    progress: Callable[[float, str], None] = lambda fraction, message: None
    cancelled: Callable[[], bool] = lambda: False
    notices: list[str] = field(default_factory=list)

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)

    def report(self, fraction: float, message: str = "") -> None:
        if self.cancelled():
            raise Cancelled("request was cancelled")
        self.progress(max(0.0, min(1.0, fraction)), message)


@dataclass(frozen=True)
class Tool:
    name: str
    help: str
    params: tuple[Param, ...]
    min_inputs: int
    max_inputs: int
    run: Callable[[list[Clip], dict[str, Any], ToolContext], list[Clip]] = field(repr=False)
    color: int = 0x808080  # clip colour in Live, 0xRRGGBB
    # An input with no notes gives the model nothing to follow: silent clips would come back
    # and look like a result, so the tool refuses it (Generate reads only the input's length).
    needs_notes: bool = True

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        return resolve(self.params, given)

    def __call__(self, clips: list[Clip], given: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        """Check the input count and parameters, then run; the one entry point for every caller."""
        if not self.min_inputs <= len(clips) <= self.max_inputs:
            want = str(self.min_inputs) if self.min_inputs == self.max_inputs else f"{self.min_inputs}-{self.max_inputs}"
            raise ToolError(f"{self.name} takes {want} input clip(s), got {len(clips)}", "bad_input")
        empty = [i + 1 for i, clip in enumerate(clips) if not clip.notes]
        if self.needs_notes and empty:
            which = "the input clip has" if len(clips) == 1 else f"input clip {', '.join(map(str, empty))} has"
            raise ToolError(f"{self.name}: {which} no notes", "bad_input")
        return self.run(clips, self.resolve(given), ctx)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "help": self.help, "inputs": [self.min_inputs, self.max_inputs],
                "color": f"#{self.color:06X}", "params": [p.to_dict() for p in self.params]}


def _load() -> dict[str, Tool]:
    from bridge.tools import continuation, drumify, generate, groove, harmonize, interpolate

    return {t.name: t for t in (generate.TOOL, continuation.TOOL, interpolate.TOOL, groove.TOOL, drumify.TOOL,
                                      harmonize.TOOL)}


TOOLS: dict[str, Tool] = _load()
