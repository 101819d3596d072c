"""Serving-side model classes, keyed by the `model_class` a bundle's config names.

Each class is built from a verified `Bundle` with `from_bundle` and runs in NumPy only.
"""
from __future__ import annotations

from typing import Any

MODEL_CLASSES: dict[str, Any] = {}
from bridge.models import groovae  # noqa: E402,F401  (registers "groovae")
from bridge.models import events_rnn  # noqa: E402,F401  (registers "events_rnn")
from bridge.models import music_vae  # noqa: E402,F401  (registers "music_vae")
from bridge.models import magenta_rnn  # noqa: E402,F401  (registers "magenta_rnn")
from bridge.models import coconet  # noqa: E402,F401  (registers "coconet")
