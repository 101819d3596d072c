"""Generate: new clips from nothing, sampled from a MusicVAE prior."""
from __future__ import annotations

from bridge.params import Param
from bridge.tools import Tool, ToolContext
from bridge.tools.common import BUNDLE, DRUM_MAP, SCALE_MODE, SCALE_ROOT, SEED, TEMPERATURE, TYPE, variations

PARAMS = (
    variations(16, 8),
    Param("bars", "int", 4, "Length of each clip in bars.", choices=(1, 2, 4, 8)),
    TEMPERATURE, TYPE, SEED, SCALE_ROOT, SCALE_MODE, DRUM_MAP, BUNDLE,
)


def run(clips, params, ctx: ToolContext):
    model = ctx.models.require("generate", params["type"], params["bundle"],
                               clips[0].time_signature if clips else None)
    return model.generate(clips, params, ctx)


TOOL = Tool("generate", "Sample new melodies or drum beats.", PARAMS, 0, 1, run, 0x84DCC6,
            needs_notes=False)
