"""Converters turn one MIDI file into fixed-shape training examples (see the contract in
bridge.train.families). Each module here registers its classes by name with `register`;
`get` imports every module of this package first, so adding a converter is adding a file.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

CONVERTERS: dict[str, Any] = {}


def register(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in CONVERTERS and CONVERTERS[name] is not cls:
            raise ValueError(f"converter {name} registered twice")
        CONVERTERS[name] = cls
        return cls
    return wrap


def get(name: str, **args: Any):
    """A new converter instance by name, built with the config's converter_args."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    if name not in CONVERTERS:
        raise ValueError(f"unknown converter {name!r}; known: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[name](**args)
