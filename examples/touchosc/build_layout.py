"""Build the TouchOSC Mk2 layout `magenta-bridge.tosc` from the bridge's tool table.

    python examples/touchosc/build_layout.py [OUT.tosc]

A .tosc file is zlib-compressed XML: a tree of nodes (controls) with typed properties, values
and Lua scripts; a property left out takes TouchOSC's default (py2tosc's docs/guide/format.md
describes the format as TouchOSC writes it). TouchOSC buttons cannot easily send a request id or
key/value pairs, so the layout's root script builds every request (`/bridge/<tool> <id> key
value ...`) from the controls, and shows the bridge's status, progress and errors. The fader
ranges and each tool's parameter ranges are written from `bridge.tools.TOOLS`, so rebuilding
after a tool change keeps the layout in step; tests/test_touchosc.py checks the committed file
is up to date.
"""
from __future__ import annotations

import sys
import uuid
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

from bridge.tools import TOOLS

HERE = Path(__file__).resolve().parent
LAYOUT = HERE / "magenta-bridge.tosc"
SCRIPT = HERE / "root.lua"
FADERS = ("variations", "temperature", "bars")  # tool parameters with a fader, when the tool has them
PLACES = {"track": (0, 15), "slot": (0, 15)}  # Live track and slot faders, 0-based as AbletonOSC counts
WIDTH, HEIGHT = 1024, 768


def _lua_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _lua_range(low: float, high: float, whole: bool, choices: list) -> str:
    """`low, high, whole[, {choices}]`: a fader over a param that takes only some values (bars:
    1, 2, 4, 8) steps through those."""
    listed = f", {{{', '.join(_lua_number(c) for c in choices)}}}" if choices else ""
    return f"{_lua_number(low)}, {_lua_number(high)}, {str(whole).lower()}{listed}"


def lua_tools() -> str:
    """The root script's TOOLS table: inputs needed and each fader parameter's range, per tool."""
    lines = ["local TOOLS = {"]
    for tool in TOOLS.values():
        params = [f"{{'{p.name}', {_lua_range(p.min, p.max, p.kind == 'int', list(p.choices))}}}"
                  for p in tool.params if p.name in FADERS]
        lines.append(f"  {tool.name} = {{inputs = {tool.min_inputs}, params = {{{', '.join(params)}}}}},")
    lines.append("}")
    return "\n".join(lines)


def lua_faders() -> str:
    """The FADERS table: each fader's full range, the widest any tool allows (clamped per tool)."""
    lines = ["local FADERS = {"]
    for name in FADERS:
        params = [p for tool in TOOLS.values() for p in tool.params if p.name == name]
        low, high = min(p.min for p in params), max(p.max for p in params)
        choices = sorted({c for p in params for c in p.choices}) if all(p.choices for p in params) else []
        lines.append(f"  {name} = {{{_lua_range(low, high, params[0].kind == 'int', choices)}}},")
    for name, (low, high) in PLACES.items():
        lines.append(f"  {name} = {{{low}, {high}, true}},")
    lines.append("}")
    return "\n".join(lines)


def root_script() -> str:
    return SCRIPT.read_text().replace("--@TOOLS@", lua_tools()).replace("--@FADERS@", lua_faders())


class Node:
    """One control: an XML <node> with the properties and values TouchOSC reads."""

    def __init__(self, kind: str, name: str, frame: tuple[int, int, int, int], color: int = 0x404040,
                 script: str | None = None, **extra: tuple[str, object]) -> None:
        self.kind, self.name = kind, name
        typed = {"name": ("s", name), "frame": ("r", frame), "color": ("c", color), "visible": ("b", True),
                 "background": ("b", True), "outline": ("b", True), **extra}
        if script is not None:
            typed["script"] = ("s", script)
        self.properties: list[tuple[str, str, object]] = [(kind_, key, value) for key, (kind_, value) in typed.items()]
        self.values: list[tuple[str, object]] = [("touch", "false")]
        self.children: list[Node] = []

    def value(self, key: str, default: object) -> "Node":
        self.values.append((key, default))
        return self

    def xml(self, path: str = "") -> ET.Element:
        path = f"{path}/{self.name}"
        node = ET.Element("node", ID=str(uuid.uuid5(uuid.NAMESPACE_URL, "magenta-bridge.tosc" + path)), type=self.kind)
        properties = ET.SubElement(node, "properties")
        for kind, key, value in sorted(self.properties, key=lambda p: p[1]):
            prop = ET.SubElement(properties, "property", type=kind)
            ET.SubElement(prop, "key").text = key
            _value(ET.SubElement(prop, "value"), kind, value)
        values = ET.SubElement(node, "values")
        for key, default in self.values:
            value = ET.SubElement(values, "value")
            for tag, text in (("key", key), ("locked", "0"), ("lockedDefaultCurrent", "0"),
                              ("default", str(default)), ("defaultPull", "0")):
                ET.SubElement(value, tag).text = text
        if self.children:
            children = ET.SubElement(node, "children")
            children.extend(child.xml(path) for child in self.children)
        return node


def _value(element: ET.Element, kind: str, value: object) -> None:
    if kind == "r":
        for tag, number in zip("xywh", value):
            ET.SubElement(element, tag).text = str(number)
    elif kind == "c":
        for tag, shift in (("r", 16), ("g", 8), ("b", 0)):
            ET.SubElement(element, tag).text = f"{((value >> shift) & 0xFF) / 255:.3f}"
        ET.SubElement(element, "a").text = "1"
    elif kind == "b":
        element.text = "1" if value else "0"
    else:
        element.text = str(value)


def label(name: str, frame: tuple[int, int, int, int], text: str, size: int = 20, overlay: bool = False) -> Node:
    """A text; an overlay draws no background or outline of its own over the control beneath."""
    return Node("LABEL", name, frame, 0x202020, textSize=("i", size), interactive=("b", False),
                background=("b", not overlay), outline=("b", not overlay)).value("text", text)


def button(name: str, frame: tuple[int, int, int, int], color: int, script: str | None, text: str,
           toggle: bool = False) -> list[Node]:
    """A button and its caption: TouchOSC buttons show no text, so a label lies over each one.

    The label is not interactive, so a press goes through it to the button (a LABEL left
    interactive swallows it: py2tosc's defaults.py, from 5,134 labels the editor wrote)."""
    return [Node("BUTTON", name, frame, color, script, buttonType=("i", 1 if toggle else 0)).value("x", 0),
            label(f"{name}_label", frame, text, 18, overlay=True)]


def fader(name: str, frame: tuple[int, int, int, int], default: float, interactive: bool = True) -> Node:
    """A fader filling along its long side: orientation 0 (north, TouchOSC's default) for a tall
    one, 1 (east) for a wide one, as wide faders in TouchOSC's own layouts carry (py2tosc's
    enums.py: orientation counts north, east, south, west from 0)."""
    script = f"function onValueChanged(key)\n  if key == 'x' then root:notify('fader', '{name}') end\nend\n"
    return Node("FADER", name, frame, 0x3C78D8, script if interactive else None, interactive=("b", interactive),
                orientation=("i", 1 if frame[2] > frame[3] else 0)).value("x", default)


def press(notify: str, value: str) -> str:
    """A button script: on press (x goes to 1), ask the root script to act."""
    return f"function onValueChanged(key)\n  if key == 'x' and self.values.x == 1 then root:notify('{notify}', '{value}') end\nend\n"


def layout() -> Node:
    root = Node("GROUP", "magenta-bridge", (0, 0, WIDTH, HEIGHT), 0x101010, root_script())
    add = root.children.extend
    add([label("title", (20, 10, 600, 50), "magenta-bridge", 28), label("bridge", (620, 10, 210, 50), "not connected", 18)])
    add(button("connect", (844, 10, 160, 50), 0x505050, press("connect", ""), "connect"))
    step = (WIDTH - 20) // len(TOOLS)  # one row of tool buttons, however many tools there are
    for i, tool in enumerate(TOOLS.values()):
        add(button(tool.name, (20 + i * step, 80, step - 20, 140), tool.color, press("run", tool.name), tool.name))
    for i, name in enumerate((*FADERS, *PLACES)):
        x = 20 + i * 200
        add([fader(name, (x, 240, 180, 280), 0.5 if name in FADERS else 0.0), label(f"{name}_value", (x, 520, 180, 40), name, 18)])
    add(button("from_last", (20, 580, 180, 90), 0x6A4C93, press("input", "last"), "input: last result", toggle=True))
    add(button("from_live", (220, 580, 180, 90), 0x6A4C93, press("input", "live"), "input: Live clip", toggle=True))
    add(button("to_live", (420, 580, 180, 90), 0x1982C4, None, "result: into Live", toggle=True))  # read by run()
    add(button("cancel", (620, 580, 180, 90), 0xB33A3A, press("cancel", ""), "cancel"))
    add([fader("progress", (20, 690, 780, 20), 0.0, interactive=False), label("status", (20, 715, 984, 45), "press a tool", 18)])
    return root


def build() -> bytes:
    document = ET.Element("lexml", version="3")
    document.append(layout().xml())
    xml = b"<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(document, encoding="utf-8")
    return zlib.compress(xml, 9)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else LAYOUT
    out.write_bytes(build())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
