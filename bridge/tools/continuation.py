"""Continue: extend a clip with a MusicRNN, keeping the primer as it was."""
from __future__ import annotations

from bridge.params import Param
from bridge.tools import Tool, ToolContext
from bridge.tools.common import BUNDLE, DRUM_MAP, SCALE_MODE, SCALE_ROOT, SEED, TEMPERATURE, TYPE, variations

PARAMS = (
    variations(8, 4),
    Param("length", "int", 2, "Bars to add after the primer.", 1, 32),
    TEMPERATURE, TYPE, SEED, SCALE_ROOT, SCALE_MODE,
    Param("include_primer", "bool", True, "Return the primer notes before the continuation."),
    DRUM_MAP, BUNDLE,
)


def run(clips, params, ctx: ToolContext):
    model = ctx.models.require("continue", params["type"], params["bundle"], clips[0].time_signature)
    return model.continue_clip(clips[0], params, ctx)


TOOL = Tool("continue", "Extend a melody or drum clip.", PARAMS, 1, 1, run, 0xDE0EF4)
