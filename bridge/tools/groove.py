"""Groove: humanize a drum clip's timing and velocity with GrooVAE."""
from __future__ import annotations

from bridge.params import Param
from bridge.tools import Tool, ToolContext
from bridge.tools.common import BUNDLE, DRUM_MAP, SEED, TEMPERATURE, variations

PARAMS = (
    variations(8, 1),
    TEMPERATURE,
    Param("amount", "float", 1.0, "Blend: 0 keeps the input's feel, 1 takes the model's.", 0.0, 1.0),
    Param("dynamics", "float", 1.0, "1 keeps each drum's velocity level as you played it (the model adds "
          "accents around it); 0 takes the model's levels.", 0.0, 1.0),
    Param("ghost_notes", "bool", False, "Let the model add hits that were not in the input."),
    SEED, DRUM_MAP, BUNDLE,
)


def run(clips, params, ctx: ToolContext):
    model = ctx.models.require("groove", "drums", params["bundle"], clips[0].time_signature)
    return model.groove(clips[0], params, ctx)


TOOL = Tool("groove", "Humanize a drum clip: timing and velocity.", PARAMS, 1, 1, run, 0xF85A3E)
