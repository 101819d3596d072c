"""Where a tool request's input comes from and where its result goes, beyond plain OSC.

Clients that cannot upload clips (a TouchOSC page, a hardware controller) name their input
instead: `input last` takes the clips of their own previous result, `input live` reads Live's
clip slots through AbletonOSC. `deliver live` writes the result into Live's empty clip slots
instead of streaming it back. `track` and `slot` (0-based, as AbletonOSC counts) say where:
the slot read, and the first slot written (the first empty one from there on).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.ableton import AbletonOSC
from bridge.clip import Clip
from bridge.params import Param, ParamError
from bridge.protocol import PREFIX, as_int
from bridge.tools import Tool, ToolError

KEYS = ("input", "deliver", "track", "slot")
INPUT = Param("input", "enum", "upload", "Where the input clips come from.", choices=("upload", "last", "live"))
DELIVER = Param("deliver", "enum", "osc", "Where the result clips go.", choices=("osc", "live"))
# `/bridge/delivered <id> <clip_index> <track> <slot>`: one per clip written into Live, before `done`.
DELIVERED = PREFIX + "delivered"


@dataclass(frozen=True)
class Routing:
    """The request's `input`, `deliver`, `track` and `slot` keys, checked."""

    input: str = "upload"
    deliver: str = "osc"
    track: int = 0
    slot: int = 0

    @classmethod
    def take(cls, given: dict[str, Any]) -> "Routing":
        """Remove the routing keys from a request's parameters; refuse bad values."""
        source = INPUT.coerce(given.pop("input", INPUT.default))
        target = DELIVER.coerce(given.pop("deliver", DELIVER.default))
        place = {key: given.pop(key) for key in ("track", "slot") if key in given}
        if place and "live" not in (source, target):
            raise ParamError(f"{next(iter(place))} applies only with input live or deliver live")
        numbers = {}
        for key, value in place.items():
            try:
                numbers[key] = as_int(key, value)
            except ValueError:
                numbers[key] = -1
            if not 0 <= numbers[key] <= 9999:
                raise ParamError(f"{key} must be a Live {key} index 0-9999 (0 is the first), got {value!r}")
        return cls(source, target, **numbers)

    @property
    def live(self) -> bool:
        return "live" in (self.input, self.deliver)


def input_count(tool: Tool) -> int:
    """How many clips `input last` or `input live` hands a tool: what it needs, at least one."""
    return max(1, tool.min_inputs)


def last_inputs(tool: Tool, previous: list[Clip] | None) -> list[Clip]:
    """The first clips of the client's previous result, for `input last`."""
    if previous is None:
        raise ToolError("input last: this client has no recent result to use", "missing_input")
    count = input_count(tool)
    if len(previous) < count:
        raise ToolError(f"input last: {tool.name} needs {count} clips, the last result has {len(previous)}",
                        "bad_input")
    return previous[:count]


async def prepare_inputs(tool: Tool, routing: Routing, clips: list[Clip], live: AbletonOSC) -> list[Clip]:
    """Read `input live` clips; give a tool that starts from nothing the set's tempo and meter."""
    if routing.input == "live":
        return await live.read_clips(routing.track, routing.slot, input_count(tool))
    if routing.deliver == "live" and not clips and tool.max_inputs > 0:
        return [await live.song_context()]
    return clips


async def deliver(tool: Tool, routing: Routing, clips: list[Clip], live: AbletonOSC) -> list[int]:
    """Write the result into Live's empty slots from `slot` on (past the input, for `input live`)."""
    return await live.write_clips(routing.track, routing.slot, clips, tool.color)
