"""Continue: extend a clip with a MusicRNN, keeping the primer as it was.

`type` auto picks the family from the clip: drums for a clip that reads as drums through the
drum map (short hits on drum pitches), the polyphonic model when notes sound together (chords,
a chorale, a piano part) and one is installed for the clip's meter, else the melody model, which
says in a notice that it heard the top line only.
"""
from __future__ import annotations

import numpy as np

from bridge.clip import Clip, quantize
from bridge.drums import looks_like_drums
from bridge.params import Param
from bridge.tools import Tool, ToolContext, ToolError
from bridge.tools.common import BUNDLE, DRUM_MAP, SCALE_MODE, SCALE_ROOT, SEED, TEMPERATURE, drum_map_of, variations

TYPE = Param("type", "enum", "auto", "Which model family: auto (drums for a drum clip, poly when notes sound "
             "together and a poly model is installed, else melody), melody (one line), poly (chords, chorales, "
             "piano parts) or drums.",
             choices=("auto", "melody", "poly", "drums"))
PARAMS = (
    variations(8, 4),
    Param("length", "int", 2, "Bars to add after the primer.", 1, 32),
    TEMPERATURE, TYPE, SEED, SCALE_ROOT, SCALE_MODE,
    Param("include_primer", "bool", True, "Return the primer notes before the continuation."),
    DRUM_MAP, BUNDLE,
)
CHORDAL_SHARE = 0.25  # of the sounding 16ths with two or more notes: a legato line overlaps far less


def sounds_together(clip: Clip) -> bool:
    """Whether two or more notes sound together for at least CHORDAL_SHARE of the 16th steps
    where anything sounds; on the 16th grid a legato overlap shorter than a 16th vanishes."""
    notes = quantize(clip, 4)
    if len(notes) < 2:
        return False
    counts = np.zeros(max(g.end_step for g in notes) - min(g.step for g in notes), np.int32)
    first = min(g.step for g in notes)
    for g in notes:
        counts[g.step - first:g.end_step - first] += 1
    return (counts >= 2).sum() >= CHORDAL_SHARE * (counts >= 1).sum()


def run(clips, params, ctx: ToolContext):
    clip, kind = clips[0], params["type"]
    if kind == "auto":
        kind = "melody"
        if looks_like_drums(clip.audible_notes(), drum_map_of(params)):
            kind = "drums"
        elif sounds_together(clip):
            try:
                ctx.models.require("continue", "poly", params["bundle"], clip.time_signature)
                kind = "poly"
            except ToolError:  # none installed, or none for this meter: the melody model takes the top line
                pass
    model = ctx.models.require("continue", kind, params["bundle"], clip.time_signature)
    return model.continue_clip(clip, params, ctx)


TOOL = Tool("continue", "Extend a melody, chord, chorale or drum clip.", PARAMS, 1, 1, run, 0xDE0EF4)
