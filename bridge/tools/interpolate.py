"""Interpolate: a path of clips from A to B through a MusicVAE latent space."""
from __future__ import annotations

from bridge.params import Param
from bridge.tools import Tool, ToolContext, ToolError
from bridge.tools.common import BUNDLE, DRUM_MAP, SEED, TEMPERATURE, TYPE

PARAMS = (
    Param("steps", "int", 3, "How many clips on the path from A to B.", 1, 16),
    Param("amount", "float", None, "Attribute mode: one clip morphed from A toward B by this amount (0-1).", 0.0, 1.0),
    Param("keep_ends", "bool", False, "Return A and B themselves as first and last clips instead of reconstructions."),
    TEMPERATURE, TYPE, SEED, DRUM_MAP, BUNDLE,
)


def run(clips, params, ctx: ToolContext):
    a, b = (clip.time_signature for clip in clips)
    if a != b:
        raise ToolError(f"A is in {a} and B in {b}: interpolate walks between clips of one meter", "bad_input")
    model = ctx.models.require("interpolate", params["type"], params["bundle"], clips[0].time_signature)
    if round(clips[0].length, 6) != round(clips[1].length, 6):
        shorter = "A" if clips[0].length < clips[1].length else "B"
        ctx.notice(f"A is {_bars(clips[0])} and B {_bars(clips[1])}: the results are as long as {shorter}, "
                   f"and the longer clip is read from its start for that long")
    return model.interpolate(clips[0], clips[1], params, ctx)


def _bars(clip) -> str:
    return f"{clip.bars:g} bar{'' if clip.bars == 1 else 's'}"


TOOL = Tool("interpolate", "Morph between two clips.", PARAMS, 2, 2, run, 0xD88715)
