"""Every trainable model, declared in one place: model class, data converter and hparams.

As Magenta's music_vae configs do, a name maps to everything needed to build the data, train
the model and serve it, so a new model is one entry here. Importing this module pulls in no
TensorFlow: the Keras side is looked up by `model_class` only when training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    name: str                  # config name, also the default bundle name
    model_class: str           # key in bridge.models.MODEL_CLASSES and the Keras families
    kind: str                  # "melody" or "drums": the `type` a tool asks for
    tools: tuple[str, ...]     # tools this model serves
    converter: str             # data converter name (bridge.data)
    converter_args: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    help: str = ""

    def with_hparams(self, overrides: dict[str, Any]) -> "ModelConfig":
        """A copy with hparams overridden (from `--hparams k=v,...`); unknown keys are refused."""
        unknown = sorted(set(overrides) - set(self.hparams))
        if unknown:
            raise ValueError(f"unknown hparam {unknown[0]!r} for {self.name}; known: {', '.join(sorted(self.hparams))}")
        return ModelConfig(self.name, self.model_class, self.kind, self.tools, self.converter,
                           dict(self.converter_args), {**self.hparams, **overrides}, self.help)


CONFIGS: dict[str, ModelConfig] = {}


def register(config: ModelConfig) -> ModelConfig:
    if config.name in CONFIGS:
        raise ValueError(f"config {config.name} registered twice")
    CONFIGS[config.name] = config
    return config
