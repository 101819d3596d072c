"""The installed models: every bundle in a folder, loaded once at start-up.

A bundle that fails to load is kept in `refused` with its reason (shown by `status`, `models`
and `doctor`); the other bundles still serve. The folders come from `bridge.install`'s search
path; of two bundles with one folder name, the one in the earlier folder is loaded.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from bridge import meter
from bridge.bundle import Bundle, BundleError, load_bundle
from bridge.clip import TimeSignature
from bridge.install import bundle_folders, shipped
from bridge.tools import ModelNotInstalled, ToolError

log = logging.getLogger(__name__)

# The bundles this copy of the package ships (the checkout's bundles/, or the wheel's copy).
DEFAULT_BUNDLES_DIR = shipped("bundles")
MAX_REASON = 300  # characters of a refusal reason kept


@dataclass
class Loaded:
    bundle: Bundle
    model: Any

    @property
    def name(self) -> str:
        return self.bundle.name

    def serves(self, tool: str, kind: str) -> bool:
        cfg = self.bundle.config
        return tool in cfg["tools"] and kind == cfg["kind"]

    @property
    def meters(self) -> list[str]:
        """The meters the model was trained in (bundles from before meters were listed: 4/4)."""
        return list(self.bundle.config.get("meters") or meter.LEGACY_METERS)

    def accepts(self, time_signature: TimeSignature | None) -> bool:
        if time_signature is None:
            return True
        return meter.accepts(self.meters, time_signature, bool(self.bundle.config.get("hparams", {}).get("meter")))


@dataclass
class ModelStore:
    loaded: list[Loaded] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    folders: list[Path] = field(default_factory=list)  # searched, in order: error messages name them

    @classmethod
    def from_dir(cls, directory: str | Path | Sequence[str | Path] | None) -> "ModelStore":
        """Every bundle in a folder, or in a list of folders searched in order."""
        from bridge.models import MODEL_CLASSES

        folders = [directory] if isinstance(directory, (str, Path)) else list(directory or ())
        store = cls(folders=[Path(folder) for folder in folders])
        paths: dict[str, Path] = {}
        for folder in store.folders:
            for path in bundle_folders(folder):
                paths.setdefault(path.name, path)
        for path in sorted(paths.values(), key=lambda p: p.name):
            try:
                bundle = load_bundle(path)
                model_class = MODEL_CLASSES.get(bundle.config["model_class"])
                if model_class is None:
                    raise BundleError(f"bundle {path.name}: unknown model_class {bundle.config['model_class']!r}")
                store.loaded.append(Loaded(bundle, model_class.from_bundle(bundle)))
            except Exception as exc:  # one bad bundle must not stop the others from serving
                reason = str(exc) if isinstance(exc, BundleError) else f"bundle {path.name}: {exc}"
                if len(reason) > MAX_REASON:  # a model may list every missing weight: say it in a line
                    reason = reason[:MAX_REASON - 3] + "..."
                store.refused[path.name] = reason
                log.warning("refused %s", reason)
        return store

    def require(self, tool: str, kind: str, name: str | None = None, time_signature: TimeSignature | None = None) -> Any:
        """The model for a tool and type (or the named bundle) that takes the clip's meter.

        Among several, a bundle marked default wins, then the one trained in the fewest meters
        (a 4/4 specialist before a model of all meters), then by name. ModelNotInstalled when
        none serves the tool; a `bad_input` ToolError, naming the meters there are models for,
        when none takes the meter.
        """
        if name:
            for item in self.loaded:
                if item.name == name:
                    if tool not in item.bundle.config["tools"]:
                        raise ModelNotInstalled(f"bundle {name} does not serve {tool}")
                    if item.bundle.config["kind"] != kind:
                        raise ToolError(f"bundle {name} is a {item.bundle.config['kind']} model and this {tool} "
                                        f"request is for {kind}: pick a {kind} bundle{self._type_hint(tool, item)}",
                                        "bad_param")
                    self._check_meter([item], tool, time_signature)
                    return item.model
            raise ModelNotInstalled(f"no bundle named {name!r} is installed")
        candidates = [item for item in self.loaded if item.serves(tool, kind)]
        if not candidates:
            where = ", ".join(str(folder) for folder in self.folders) or "no bundle folder"
            raise ModelNotInstalled(f"no {kind} model for {tool} is installed (searched {where}); add a bundle "
                                    "there, or name a folder of bundles with --bundles or MAGENTA_BRIDGE_BUNDLES")
        candidates = self._check_meter(candidates, tool, time_signature)
        candidates.sort(key=lambda item: (not item.bundle.config.get("default", False), len(item.meters), item.name))
        return candidates[0].model

    @staticmethod
    def _type_hint(tool: str, item: Loaded) -> str:
        from bridge.tools import TOOLS

        takes_type = any(p.name == "type" for p in TOOLS[tool].params)
        return f" or set type {item.bundle.config['kind']}" if takes_type else ""

    @staticmethod
    def _check_meter(candidates: list[Loaded], tool: str, time_signature: TimeSignature | None) -> list[Loaded]:
        fitting = [item for item in candidates if item.accepts(time_signature)]
        if not fitting:
            trained = sorted({m for item in candidates for m in item.meters},
                             key=lambda m: (meter.parse(m).denominator, meter.parse(m).numerator))
            raise ToolError(f"no installed {tool} model takes {time_signature}: they are trained in "
                            f"{', '.join(trained)} (and meters with the same bar and beats on their grid, such "
                            "as 2/2 for 2/4 or 3/2 for 3/4)", "bad_input")
        return fitting

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": i.name, "kind": i.bundle.config["kind"], "tools": list(i.bundle.config["tools"]),
                 "model_class": i.bundle.config["model_class"], "meters": i.meters} for i in self.loaded]
