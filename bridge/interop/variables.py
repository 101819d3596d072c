"""A Magenta checkpoint's variables as the importers see them, and what an import yields.

Every importer takes variables through `Variables`, which remembers what it placed, so a
variable no layout accounts for is named in the refusal instead of being silently dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bridge.interop import lstm_layout


class ImportRefused(ValueError):
    """A checkpoint this bridge will not import; the message says what it cannot serve and why."""


@dataclass(frozen=True)
class Imported:
    config: dict
    weights: dict[str, np.ndarray]
    layout: str  # one line for the model card: what Magenta model this was


class Variables:
    """A checkpoint's variables, remembering which ones a layout has placed."""

    def __init__(self, variables: dict[str, np.ndarray], label: str) -> None:
        self._all, self._placed, self.label = variables, set(), label

    def has(self, name: str) -> bool:
        return name in self._all

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self._all:
            raise ImportRefused(f"{self.label}: variable {name} is missing")
        return self._all[name].shape

    def matching(self, pattern: str) -> list[str]:
        return sorted(n for n in self._all if re.search(pattern, n))

    def take(self, name: str) -> np.ndarray:
        if name not in self._all:
            raise ImportRefused(f"{self.label}: variable {name} is missing")
        self._placed.add(name)
        return self._all[name]

    def lstm(self, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A cell's weights in our layout; TF before 1.2 named them weights/biases (older .mag files)."""
        kernel, bias = ("kernel", "bias") if self.has(prefix + "kernel") else ("weights", "biases")
        return lstm_layout.from_tf(self.take(prefix + kernel), self.take(prefix + bias))

    def dense(self, prefix: str, kernel: str = "kernel", bias: str = "bias") -> tuple[np.ndarray, np.ndarray]:
        return self.take(prefix + kernel), self.take(prefix + bias)

    def count(self, template: str, *args: str) -> int:
        """How many cells 0, 1, ... exist under `template` (with either TF naming)."""
        n = 0
        while self.has(template.format(n, *args) + "kernel") or self.has(template.format(n, *args) + "weights"):
            n += 1
        return n

    def cell_shapes(self, prefix: str) -> tuple[int, int]:
        """(inputs, units) of a TF cell from its kernel [inputs + units, 4 units]."""
        kernel = prefix + ("kernel" if self.has(prefix + "kernel") else "weights")
        units = self.shape(kernel)[1] // 4
        return self.shape(kernel)[0] - units, units

    def check_all_placed(self, layout: str) -> None:
        left = sorted(set(self._all) - self._placed)
        if left:
            shown = ", ".join(f"{n} {list(self._all[n].shape)}" for n in left[:8])
            more = f" and {len(left) - 8} more" if len(left) > 8 else ""
            raise ImportRefused(f"{self.label}: read as {layout}, but could not place {len(left)} variable(s): "
                                f"{shown}{more}; this layout is not one the bridge can serve")


def named(lstms: dict[str, tuple], denses: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Bundle arrays from (kernel, recurrent, bias) LSTMs and (kernel, bias) dense layers, by prefix."""
    weights = {}
    for prefix, (kernel, recurrent, bias) in lstms.items():
        weights.update({f"{prefix}/kernel": kernel, f"{prefix}/recurrent_kernel": recurrent, f"{prefix}/bias": bias})
    for prefix, (kernel, bias) in denses.items():
        weights.update({f"{prefix}/kernel": kernel, f"{prefix}/bias": bias})
    return {k: np.ascontiguousarray(w, np.float32) for k, w in weights.items()}
