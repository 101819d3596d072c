"""Where the model bundles and the Max for Live devices are after any kind of install.

Bundles are searched in this order; of two bundle folders with the same name, the first wins:

1. `--bundles DIR`, when given: that folder only.
2. Each folder in the environment variable MAGENTA_BRIDGE_BUNDLES (separated by `os.pathsep`).
3. The user's bundle folder (`user_bundles_dir()`): where `magenta-bridge bundles --copy` puts
   bundles, and a good `export -o` target for models you train.
4. The bundles this copy ships: `bundles/` of a source checkout (editable install or a run from
   the tree), else `bridge/_data/bundles` inside an installed wheel, where setup.py's build step
   copies them.

The devices (`m4l/*.amxd`) are found the same way as step 4; `magenta-bridge devices --copy`
puts them into Live's User Library.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from bridge.bundle import BundleError, load_bundle

ENV_BUNDLES = "MAGENTA_BRIDGE_BUNDLES"
PACKAGE = Path(__file__).resolve().parent
# A source checkout holds the package beside pyproject.toml; an installed package does not.
CHECKOUT = PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").is_file() else None
DATA = PACKAGE / "_data"  # what the wheel carries: bundles/ and m4l/ (see setup.py)

# The Max for Live device kinds, by the type code at bytes 8-12 of an .amxd (m4l/build.py writes
# them), and the User Library folder each goes to. Live 12 lists MIDI Tools from
# `MIDI Tools/Max Generators` and `MIDI Tools/Max Transformations` (m4l/README.md); any other
# folder in the User Library shows up in Live's browser as it is (Ableton, "The User Library",
# help.ableton.com/hc/en-us/articles/209774085).
DEVICE_KINDS = {b"mmmm": "effect", b"nagg": "generator", b"natt": "transformation"}
DEVICE_FOLDERS = {"effect": Path("magenta-bridge"), "generator": Path("MIDI Tools", "Max Generators"),
                  "transformation": Path("MIDI Tools", "Max Transformations")}


class SearchPath(tuple):
    """Folders in search order; prints as a user would write them in MAGENTA_BRIDGE_BUNDLES."""

    def __str__(self) -> str:
        return os.pathsep.join(str(path) for path in self)


def shipped(name: str) -> Path:
    """`bundles` or `m4l` as this copy ships it: in the checkout, else inside the package."""
    if CHECKOUT is not None and (CHECKOUT / name).is_dir():
        return CHECKOUT / name
    return DATA / name


def user_data_dir() -> Path:
    """The per-user data folder each platform documents for application data.

    Linux and others: $XDG_DATA_HOME, else ~/.local/share (XDG Base Directory Specification);
    macOS: ~/Library/Application Support (Apple, File System Programming Guide); Windows:
    %LOCALAPPDATA%, not the roaming folder, since bundles are large.
    """
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"  # the spec ignores a relative one
    return base / "magenta-bridge"


def user_bundles_dir() -> Path:
    return user_data_dir() / "bundles"


def env_bundle_folders() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get(ENV_BUNDLES, "").split(os.pathsep) if p.strip()]


def bundle_search_path(explicit: str | Path | None = None) -> SearchPath:
    """The folders to load bundles from, in order (see the module docstring)."""
    if explicit is not None:
        return SearchPath([Path(explicit)])
    folders = [*env_bundle_folders(), user_bundles_dir(), shipped("bundles")]
    return SearchPath(dict.fromkeys(folders))  # a folder named twice is searched once


def bundle_folders(folder: Path) -> list[Path]:
    """The bundles in one folder: its subfolders holding a config.json, by name."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if (path / "config.json").is_file())


def find_bundle(name: str, search: SearchPath) -> Path | None:
    for folder in search:
        if (folder / name / "config.json").is_file():
            return folder / name
    return None


def copy_bundle(source: Path, target_dir: Path, force: bool = False) -> Path:
    """Copy a bundle folder into `target_dir`, checked on the way: a copy that would not load is
    never left behind, and an existing bundle is replaced only with `force`."""
    load_bundle(source)  # refuses a broken or half-written bundle before anything is copied
    target = target_dir / source.name
    if target.resolve() == source.resolve():
        raise BundleError(f"{source} is already in {target_dir}")
    if target.exists() and not force:
        raise BundleError(f"{target} exists; pass --force to replace it")
    target_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target_dir, prefix=f".{source.name}."))
    try:
        for path in source.iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        load_bundle(staging)  # the copy itself passes its checksums
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def devices_dir() -> Path:
    return shipped("m4l")


def device_kind(path: Path) -> str | None:
    with open(path, "rb") as fh:
        return DEVICE_KINDS.get(fh.read(12)[8:12])


def live_user_library() -> Path:
    """Live's default User Library (Ableton, "The User Library"); Live's Preferences > Library
    can move it, so `devices --to` takes another."""
    documents = "Documents" if os.name == "nt" else "Music"
    return Path.home() / documents / "Ableton" / "User Library"


def device_targets(library: Path) -> list[tuple[Path, Path]]:
    """(device file, where it goes in the User Library) for every shipped device."""
    out = []
    for path in sorted(devices_dir().glob("*.amxd")):
        kind = device_kind(path)
        if kind is not None:
            out.append((path, library / DEVICE_FOLDERS[kind] / path.name))
    return out
