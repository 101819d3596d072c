"""Duet and Follow: each mode's parameters, declared once.

As the tool table does for tools, this table is what the `/bridge/duet/start` parsing, the
`duet`/`follow` command-line options, the `models` reply and the MB Duet / MB Follow controls
are derived from. Parameters a mode shares with the tool that makes its answers are that tool's
own `Param`s (a new Continue type reaches the Duet by itself); only what means something else
here is declared here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.params import Param, resolve
from bridge.tools import TOOLS

# Seconds before an answer's first beat at which the bridge decides that a phrase has ended (or
# that Follow's next bar is due): the time an answer has to be made and reach the client, so
# it sounds on its beat. The promise is 50 ms at the 99th percentile (bench/bench_duet.py).
LEAD = 0.1


def _tool_param(tool: str, name: str) -> Param:
    return next(p for p in TOOLS[tool].params if p.name == name)


@dataclass(frozen=True)
class Mode:
    """A way to play along: its name, what it does, its parameters and the tool that answers."""

    name: str
    help: str
    params: tuple[Param, ...]
    tool: str  # the tool in bridge.tools.TOOLS that makes the answers
    color: int

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        return resolve(self.params, given)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "help": self.help, "tool": self.tool, "color": f"#{self.color:06X}",
                "params": [p.to_dict() for p in self.params]}


DUET = Mode("duet", "Play a phrase and pause, and the bridge answers with its continuation, on the beat.", (
    Param("length", "int", 2, "Bars the answer lasts.", 1, 8),
    Param("wait", "float", 1.0, "Beats of silence after your last note that end your phrase.", 0.25, 8.0),
    Param("quantize", "enum", "beat", "Where the answer starts: on the first beat, or the first bar line, "
          "after the pause.", choices=("beat", "bar")),
    _tool_param("continue", "temperature"),
    _tool_param("continue", "type"),
    _tool_param("continue", "seed"),
    Param("scale_root", "int", None, "Keep the answer in this key: root pitch class 0-11 (0 = C); empty: the key "
          "your phrase is in.", 0, 11),
    _tool_param("continue", "scale_mode"),
    _tool_param("continue", "drum_map"),
    _tool_param("continue", "bundle"),
), "continue", 0xB06FE8)

FOLLOW = Mode("follow", "Play, and each next bar of drums follows the rhythm of your last bar or two.", (
    Param("bars", "int", 2, "Bars of your playing that each next bar of drums follows.", choices=(1, 2)),
    _tool_param("drumify", "temperature"),
    _tool_param("drumify", "seed"),
    _tool_param("drumify", "drum_map"),
    _tool_param("drumify", "bundle"),
), "drumify", 0x3FA9D6)

MODES: dict[str, Mode] = {mode.name: mode for mode in (DUET, FOLLOW)}
