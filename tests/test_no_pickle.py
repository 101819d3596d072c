"""Bundles and data must never be unpickled: a pickle runs code, and bundles come from anyone."""
import re
from pathlib import Path

import bridge

FORBIDDEN = re.compile(
    r"allow_pickle\s*=\s*True"
    r"|\b(c?pickle|dill|joblib|cloudpickle)\.loads?\("
    r"|^\s*(import|from)\s+(c?pickle|dill|joblib|cloudpickle)\b",
    re.MULTILINE | re.IGNORECASE,
)


def _hits(text: str) -> list[str]:
    return [m.group(0).strip() for m in FORBIDDEN.finditer(text)]


def test_pattern_catches_every_spelling():
    assert len(_hits("np.load(f, allow_pickle = True)\nx = pickle.loads(b)\nimport pickle\n"
                     "from joblib import load\ncPickle.load(f)\n")) == 5
    assert _hits("np.load(f, allow_pickle=False)  # never pickle\n") == []


def test_package_never_unpickles():
    package = Path(bridge.__file__).parent
    found = {str(p.relative_to(package)): _hits(p.read_text()) for p in sorted(package.rglob("*.py"))}
    assert {path: hits for path, hits in found.items() if hits} == {}


def test_benchmarks_tests_and_devices_never_unpickle():
    """The same rule for everything else in the repository that runs Python."""
    root = Path(bridge.__file__).parent.parent
    this = Path(__file__).resolve()
    files = [p for folder in ("bench", "tests", "m4l") for p in sorted((root / folder).rglob("*.py")) if p.resolve() != this]
    assert any(p.parent.name == "bench" for p in files) and any(p.parent.name == "tests" for p in files)
    found = {str(p.relative_to(root)): _hits(p.read_text()) for p in files}
    assert {path: hits for path, hits in found.items() if hits} == {}
