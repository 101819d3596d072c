"""Results saved as MIDI files inside the server's output folder, and nowhere else.

A `save` name is checked twice. When the request arrives (`confine_path`), so a bad name is
answered `bad_param` before anything runs; and again when the file is written, since the job
may wait in the queue while someone swaps a folder for a symlink. The write walks the name's
folders through directory handles, each opened without following symlinks, and writes and
renames the file inside the last one: no path is looked up again by name, so a symlink put on
the way at any moment makes the write fail (`save_failed`) instead of landing outside.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from bridge.clip import Clip
from bridge.params import ParamError

MIDI_SUFFIXES = (".mid", ".midi")
DRUM_TOOLS = ("groove", "drumify")  # tools that always work on drums
# Directory handles need openat/mkdirat/renameat (Linux, macOS, BSD); elsewhere (Windows) the
# name is confined again just before a path-based write.
_DIR_FDS = {os.open, os.mkdir, os.rename, os.unlink} <= os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")


def is_drums(tool: Any, given: dict[str, Any]) -> bool:
    """Whether a request works on drums (groove, drumify, `type drums`): it reads the drum
    channel of a file and writes its result, saved or offline, on it."""
    return tool.name in DRUM_TOOLS or tool.resolve(dict(given)).get("type") == "drums"


def relative_name(name: Any) -> PurePosixPath:
    """`name` as a relative path with no `..`, ending in .mid/.midi, or ParamError.

    Absolute and drive paths are refused in either slash style, since a Windows client may send them.
    """
    if not isinstance(name, str) or not name.strip():
        raise ParamError(f"save must be a MIDI file name, got {name!r}")
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or PureWindowsPath(name).drive or ".." in pure.parts:
        raise ParamError(f"save must be a relative name inside the output folder, without '..': {name!r}")
    if pure.suffix.lower() not in MIDI_SUFFIXES:
        raise ParamError(f"save must name a .mid or .midi file, got {name!r}")
    return pure


def confine_path(root: str | Path, name: Any) -> Path:
    """The file `name` inside `root`, or ParamError: a request must never write outside its folder
    (no `..`, no absolute path, no symlink that leads out)."""
    base = Path(root).expanduser().resolve()
    path = (base / relative_name(name)).resolve()
    if not path.is_relative_to(base):
        raise ParamError(f"save {name!r} leads outside the output folder (through a symlink)")
    return path


def save_midi(root: str | Path, name: PurePosixPath, clips: list[Clip], drums: bool, title: str) -> None:
    """Write clips as one MIDI file at `name` (already checked by `relative_name`) inside `root`.

    The output folder itself is the user's setting and may be a symlink; everything below it is
    opened without following any. The file is written under a temporary name and renamed, so a
    reader never sees half a file. OSError when it cannot be written.
    """
    from bridge.midi_io import midi_bytes  # mido only when a request saves: start-up stays light

    data = midi_bytes(clips, drums=drums, name=title)
    base = Path(root).expanduser()
    base.mkdir(parents=True, exist_ok=True)
    if _DIR_FDS:
        _write_through_handles(base, name, data)
    else:
        _write_by_path(confine_path(base, str(name)), data)


def _write_through_handles(base: Path, name: PurePosixPath, data: bytes) -> None:
    folder = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in name.parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=folder)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(exc.errno, f"{part} is not a folder inside the output folder "
                                             "(a symlink or a file)") from None
                raise
            os.close(folder)
            folder = inner
        tmp = f".{name.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.rename(tmp, name.name, src_dir_fd=folder, dst_dir_fd=folder)  # replaces a symlink, never follows it
        except BaseException:
            os.unlink(tmp, dir_fd=folder)
            raise
    finally:
        os.close(folder)


def _write_by_path(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
