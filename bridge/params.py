"""Tool parameters, declared once.

Each tool lists its parameters as `Param`s; the OSC argument parser, the CLI options, the
`models` reply and the Max for Live controls are all derived from those lists, so a range or a
default is changed in exactly one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _number(value: float) -> str:
    """2**31 - 1 as digits, not 2.14748e+09: a user copies a range from the message."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class ParamError(ValueError):
    """A parameter value the user must fix; the message names the parameter and its range."""


@dataclass(frozen=True)
class Param:
    """One tool parameter.

    kind is "int", "float", "enum", "bool" or "str". `default=None` marks an optional value
    (a seed, a scale) that the tool treats as "not given". An int may list `choices` (bars: 1,
    2, 4, 8): only those are taken, and min and max are theirs; every caller shows them as a
    menu of numbers, and the number itself (not its index) is the value on the wire.
    """

    name: str
    kind: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("int", "float", "enum", "bool", "str"):
            raise ValueError(f"unknown param kind {self.kind!r}")
        if self.kind == "enum" and not self.choices:
            raise ValueError(f"enum param {self.name} needs choices")
        if self.choices and self.kind not in ("enum", "int"):
            raise ValueError(f"{self.kind} param {self.name} cannot have choices")
        if self.kind == "int" and self.choices:  # frozen: set the derived range the dataclass way
            object.__setattr__(self, "min", min(self.choices))
            object.__setattr__(self, "max", max(self.choices))

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(str(choice) for choice in self.choices)
        if self.kind == "bool":
            return "0 or 1"
        if self.min is not None and self.max is not None:
            return f"{_number(self.min)}-{_number(self.max)}"
        return self.kind

    def coerce(self, value: Any) -> Any:
        """Turn a wire or command-line value into this parameter's type, or raise ParamError.

        Floats are accepted where ints are expected (TouchOSC sends only floats) and rounded;
        enums accept their index as a number too, since a Live menu sends its index.
        """
        if value is None:
            return None
        try:
            if self.kind == "int":
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError
                value = int(round(number))
            elif self.kind == "float":
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError
            elif self.kind == "bool":
                if isinstance(value, str):
                    lowered = value.strip().lower()
                    if lowered not in ("0", "1", "true", "false", "on", "off", "yes", "no"):
                        raise ValueError
                    value = lowered in ("1", "true", "on", "yes")
                else:
                    value = bool(round(float(value)))
            elif self.kind == "enum":
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    index = int(round(value))
                    if not 0 <= index < len(self.choices):
                        raise ValueError
                    value = self.choices[index]
                value = str(value)
                if value not in self.choices:
                    raise ValueError
            else:
                value = str(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: round(inf) for an enum or bool
            raise ParamError(f"{self.name} must be {self.describe_range()}, got {value!r}") from None
        if self.kind in ("int", "float"):
            outside = (self.min is not None and value < self.min) or (self.max is not None and value > self.max)
            if outside or (self.choices and value not in self.choices):
                raise ParamError(f"{self.name} must be {self.describe_range()}, got {value!r}")
        return value

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able description the `models` reply and the M4L builder use; choices are
        texts, as the `/bridge/param` reply carries them."""
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "default": self.default, "help": self.help}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.choices:
            out["choices"] = [str(choice) for choice in self.choices]
        return out


def resolve(params: tuple[Param, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults, coerce every given value and refuse names the tool does not have."""
    by_name = {p.name: p for p in params}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise ParamError(f"unknown parameter {unknown[0]!r}; this tool takes: {', '.join(by_name)}")
    return {p.name: p.coerce(given[p.name]) if p.name in given else p.default for p in params}
