"""Harmonize: four chorale voices around the voices given; with `erase`, inpaint a region."""
from __future__ import annotations

from bridge.encodings.chorale import VOICE_SETS
from bridge.params import Param
from bridge.tools import Tool, ToolContext
from bridge.tools.common import BUNDLE, SEED, TEMPERATURE, variations

PARAMS = (
    Param("voices", "enum", "auto", "Which voices the input holds, top down (S soprano, A alto, T tenor, B bass); "
          "auto: a single line is the soprano (the bass if it lies below G3), more lines are split by register. "
          "Several input clips are one voice each.", choices=("auto", *VOICE_SETS)),
    Param("erase", "enum", "none", "Inpaint: voices to erase between start and end and fill anew.",
          choices=("none", *VOICE_SETS)),
    Param("start", "float", 0.0, "Beat where the region to erase starts.", 0.0, 1024.0),
    Param("end", "float", 0.0, "Beat where the region to erase ends; 0 = the end of the clip.", 0.0, 1024.0),
    Param("iterations", "int", 64, "Gibbs sampling passes: more take longer and follow the model more closely.", 1, 512),
    TEMPERATURE,
    Param("per_voice", "bool", False, "Return one clip per voice (soprano, alto, tenor, bass), for four tracks, "
          "instead of one clip with all four."),
    variations(4, 1), SEED, BUNDLE,
)


def run(clips, params, ctx: ToolContext):
    model = ctx.models.require("harmonize", "chorale", params["bundle"], clips[0].time_signature)
    return model.harmonize(clips, params, ctx)


TOOL = Tool("harmonize", "Write alto, tenor and bass (or any missing voices) under a melody in Bach chorale style, "
            "or erase and refill a region of a four-voice clip.", PARAMS, 1, 4, run, 0x3C8DD4)
