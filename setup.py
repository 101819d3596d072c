"""Packaging: pyproject.toml declares everything except how the shipped data gets into a wheel.

The model bundles (`bundles/`) and the frozen Max for Live devices (`m4l/*.amxd`) stay at the top
of the checkout, where `magenta-bridge export` and `m4l/build.py` write them and where an editable
install finds them. A wheel (`pip install .`, `pip wheel .`) copies them into the package as
`bridge/_data/bundles/<name>/` and `bridge/_data/m4l/`, where `bridge.install` looks when there is
no checkout. Package data, not `data_files`: it lands next to the code in every install scheme
(venv, --user, system) and `pip uninstall` removes it.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def shipped_files() -> list[tuple[Path, str]]:
    """(file in the checkout, path inside the `bridge` package) for every shipped data file."""
    files = []
    for config in sorted(ROOT.glob("bundles/*/config.json")):
        bundle = config.parent
        files += [(path, f"_data/bundles/{bundle.name}/{path.name}") for path in sorted(bundle.iterdir())
                  if path.is_file() and not path.name.startswith(".")]
    files += [(path, f"_data/m4l/{path.name}") for path in sorted(ROOT.glob("m4l/*.amxd"))]
    return files


class BuildPyWithData(build_py):
    """build_py, plus the bundles and devices copied into the built package (not for -e)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        # build/ outlives a build: a bundle deleted from the checkout must not ship from there.
        self.execute(shutil.rmtree, (str(Path(self.build_lib, "bridge", "_data")), True), "clearing old data")
        for source, target in shipped_files():
            destination = Path(self.build_lib, "bridge", target)
            self.mkpath(str(destination.parent))
            self.copy_file(str(source), str(destination))


if __name__ == "__main__":
    setup(cmdclass={"build_py": BuildPyWithData})
