"""Every script the devices carry parses as ECMAScript 5, the language of Max 8's `js` object.

Max's classic `js` is SpiderMonkey 1.8.5: ES5, no let/const, arrow functions, template strings,
classes (Cycling '74, JavaScript in Max; Max 9 adds `v8` for newer code). The scripts are taken
from the built .amxd files themselves, so what is checked is what Max loads. `pyjsparser`
(ES 5.1) parses them; it still accepts a few ES6 forms (let, const, default parameters, binary
literals), so the syntax tree is walked for those, and for calls of ES6-only library functions.
"""
from typing import Any, Iterator

import pytest
from test_m4l_structure import M4L, build, read_device

pyjsparser = pytest.importorskip("pyjsparser", reason="pip install -e '.[test]' (pyjsparser checks the ES5 scripts)")

# Library functions ES5 lacks: calls of these names on anything, and of these globals.
ES6_METHODS = {"includes", "find", "findIndex", "startsWith", "endsWith", "padStart", "padEnd", "repeat", "fill",
               "entries", "values", "flat", "flatMap", "at", "assign", "from", "of"}
ES6_GLOBALS = {"Promise", "Map", "Set", "WeakMap", "WeakSet", "Symbol", "Proxy", "Reflect"}


def nodes(tree: Any) -> Iterator[dict]:
    if isinstance(tree, dict):
        if "type" in tree:
            yield tree
        for value in tree.values():
            yield from nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from nodes(value)


def es5_problems(source: str) -> list[str]:
    """What in `source` is not ES5: a parse error, or the ES6 forms pyjsparser lets through."""
    try:
        tree = pyjsparser.PyJsParser().parse(source)
    except Exception as exc:  # pyjsparser raises its own JsSyntaxError
        return [f"{type(exc).__name__}: {exc}"]
    problems = []
    for node in nodes(tree):
        kind = node["type"]
        if kind == "VariableDeclaration" and node["kind"] != "var":
            problems.append(f"{node['kind']} declaration")
        elif kind in ("FunctionDeclaration", "FunctionExpression") and node.get("defaults"):
            problems.append("default parameter")
        elif kind == "Property" and (node.get("shorthand") or node.get("method")):
            problems.append("shorthand property or method")
        elif kind == "Literal" and str(node.get("raw", ""))[:2].lower() in ("0b", "0o"):
            problems.append(f"literal {node['raw']}")
        elif kind == "CallExpression" and node["callee"]["type"] == "MemberExpression" \
                and not node["callee"]["computed"] and node["callee"]["property"]["name"] in ES6_METHODS:
            problems.append(f".{node['callee']['property']['name']}() is not in ES5")
        elif kind == "Identifier" and node["name"] in ES6_GLOBALS:
            problems.append(f"{node['name']} is not in ES5")
    return problems


def device_scripts() -> dict[str, str]:
    """Every script embedded in every built device, by name (identical copies checked once)."""
    scripts: dict[str, str] = {}
    for path in sorted(M4L.glob("*.amxd")):
        for name, data in read_device(path).files.items():
            scripts.setdefault(name, data.decode("utf-8"))
    return scripts


BUILT = set(build.device_scripts()) | set(build.device_scripts(build.DUET_JS_FILE))


def test_the_devices_carry_scripts():
    assert set(device_scripts()) == BUILT


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_device_script_is_es5(name):
    assert es5_problems(device_scripts()[name]) == []


@pytest.mark.parametrize("source, problem", [
    ("let a = 1;", "let declaration"),
    ("const a = 1;", "const declaration"),
    ("var f = (x) => x;", "ArrowFunction"),
    ("var s = `a${b}`;", "Template"),
    ("class A {}", "ClassDeclaration"),
    ("function f(a = 1) { return a; }", "default parameter"),
    ("for (var x of y) {}", "Unexpected identifier"),
    ("f(...a);", "Unexpected token"),
    ("var o = {a, b};", "shorthand property"),
    ("var o = {f() { return 1; }};", "shorthand property or method"),
    ("var n = 0b101;", "literal 0b101"),
    ("if ([1].includes(1)) {}", ".includes() is not in ES5"),
    ("var o = Object.assign({}, a);", ".assign() is not in ES5"),
    ("var p = new Promise(function () {});", "Promise is not in ES5"),
])
def test_the_checker_rejects_what_es5_lacks(source, problem):
    found = es5_problems(source)
    assert found and problem in " ".join(found), found


def test_the_checker_accepts_es5():
    assert es5_problems("var a = [1, 2].map(function (x) { return x * 2; }); var o = {get b() { return 1; }};"
                        " Object.keys(o).forEach(function (k) {}); var j = JSON.parse('{}'); Array.isArray(a);") == []
