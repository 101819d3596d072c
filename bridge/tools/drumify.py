"""Drumify: a full drum pattern that follows the rhythm of any clip."""
from __future__ import annotations

from bridge.tools import Tool, ToolContext
from bridge.tools.common import BUNDLE, DRUM_MAP, SEED, TEMPERATURE, variations

PARAMS = (variations(8, 1), TEMPERATURE, SEED, DRUM_MAP, BUNDLE)


def run(clips, params, ctx: ToolContext):
    model = ctx.models.require("drumify", "drums", params["bundle"], clips[0].time_signature)
    return model.drumify(clips[0], params, ctx)


TOOL = Tool("drumify", "Turn the rhythm of any clip into drums.", PARAMS, 1, 1, run, 0x5BC0EB)
