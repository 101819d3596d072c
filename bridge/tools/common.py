"""Parameters several tools share, so their names, ranges and help read the same everywhere."""
from __future__ import annotations

from bridge.clip import MODES
from bridge.drums import GM_DRUM_MAP, DrumMap
from bridge.params import Param, ParamError


def variations(maximum: int, default: int) -> Param:
    return Param("variations", "int", default, "How many different results to make.", 1, maximum)


TEMPERATURE = Param("temperature", "float", 1.0,
                    "Randomness: 0 always takes the likeliest choice, low repeats it, high surprises.", 0.0, 2.0)
# 2**24 - 1: every seed is exact in a float32 (OSC `f`, TouchOSC) and in a Live float parameter.
SEED = Param("seed", "int", None, "Same seed and input give the same result; empty for a new result each time.",
             0, 2**24 - 1)
TYPE = Param("type", "enum", "melody", "Which model family: melody or drums.", choices=("melody", "drums"))
BUNDLE = Param("bundle", "str", None, "Name of an installed bundle to use instead of the default for this tool and type.")
SCALE_ROOT = Param("scale_root", "int", None, "Keep output pitches in this key: root pitch class 0-11 (0 = C).", 0, 11)
SCALE_MODE = Param("scale_mode", "enum", "major", "Mode of the scale when scale_root is set.", choices=tuple(MODES))
DRUM_MAP = Param("drum_map", "str", GM_DRUM_MAP.to_text(),
                 "Nine output pitches: kick, snare, closed hat, open hat, low, mid, high tom, crash, ride.")


def drum_map_of(params: dict) -> DrumMap:
    """The request's drum map; a malformed one is the user's to fix (bad_param), never a crash."""
    try:
        return DrumMap.parse(params["drum_map"])
    except ValueError as exc:
        raise ParamError(str(exc)) from None
