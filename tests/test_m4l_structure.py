"""The committed Max for Live devices: rebuilt byte for byte, well-formed, wired and in range.

Parameter ranges are checked against `bridge.tools.TOOLS` here, not against the builder's own
control list, so a builder that drifted from the tool table fails.
"""
import importlib.util
import json
import re
import struct
import sys
from pathlib import Path

import pytest

from bridge.tools import TOOLS

REPO = Path(__file__).resolve().parent.parent
M4L = REPO / "m4l"
HEIGHT = 169

spec = importlib.util.spec_from_file_location("m4l_build", M4L / "build.py")
build = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = build  # dataclasses look their module up while the class is made
spec.loader.exec_module(build)

DEVICES = {name: (tool, kind) for name, tool, kind in build.devices()}
# Controls a device has besides its tool's parameters.
DEVICE_CONTROLS = {"run", "replace", "pick_a", "pick_b", "a_track", "a_slot", "b_track", "b_slot"}


def test_rebuild_matches_the_committed_files():
    outputs = build.outputs()
    for path, data in outputs.items():
        assert path.is_file(), f"{path.relative_to(REPO)} is missing: run .venv/bin/python m4l/build.py"
        assert path.read_bytes() == data, f"{path.relative_to(REPO)} is stale: run .venv/bin/python m4l/build.py"
    committed = set(M4L.glob("*.amxd"))
    assert committed == {p for p in outputs if p.suffix == ".amxd"}, "an .amxd in m4l/ is not built by build.py"


def read_device(path: Path) -> tuple[bytes, dict]:
    data = path.read_bytes()
    assert data[:4] == b"ampf" and struct.unpack("<I", data[4:8])[0] == 4
    kind_code = data[8:12]
    assert data[12:16] == b"meta" and struct.unpack("<I", data[16:20])[0] == 4
    assert data[24:28] == b"ptch"
    size = struct.unpack("<I", data[28:32])[0]
    payload = data[32:]
    assert len(payload) == size, "ptch size does not match the rest of the file"
    assert payload.endswith(b"\n\0")
    return kind_code, json.loads(payload[:-1].decode("utf-8"))


def boxes_of(patcher: dict) -> dict[str, dict]:
    return {item["box"]["id"]: item["box"] for item in patcher["boxes"]}


def object_class(box: dict) -> str:
    return box["text"].split()[0] if box["maxclass"] == "newobj" else box["maxclass"]


def valueof(box: dict) -> dict | None:
    enabled = box.get("parameter_enable") or box.get("saved_object_attributes", {}).get("parameter_enable")
    return box["saved_attribute_attributes"]["valueof"] if enabled else None


@pytest.fixture(params=sorted(DEVICES), ids=lambda name: name.removesuffix(".amxd"))
def device(request):
    name = request.param
    tool, kind = DEVICES[name]
    code, doc = read_device(M4L / name)
    return name, tool, kind, code, doc["patcher"]


def test_header_and_device_type(device):
    name, tool, kind, code, patcher = device
    assert code == {"effect": b"mmmm", "generator": b"nagg", "transformation": b"natt"}[kind]
    assert patcher["project"]["amxdtype"] == struct.unpack(">I", code)[0]
    assert patcher["openinpresentation"] == 1
    assert patcher["devicewidth"] > 0
    if kind != "effect":
        assert tool.name in ("generate", "drumify", "continue", "groove")


def test_every_box_has_its_class_inlets_and_outlets(device):
    _, _, _, _, patcher = device
    for box in boxes_of(patcher).values():
        cls = object_class(box)
        assert cls in build.OBJECTS, f"{cls} is not in the builder's object table"
        n_in, n_out, types = build.OBJECTS[cls]
        assert (box["numinlets"], box["numoutlets"]) == (n_in, n_out), box["id"]
        assert box.get("outlettype", []) == types


def test_js_box_matches_the_script():
    script = (M4L / "src" / "mb_device.js").read_text()
    inlets = int(re.search(r"^inlets = (\d+);", script, re.M).group(1))
    outlets = int(re.search(r"^outlets = (\d+);", script, re.M).group(1))
    assert build.OBJECTS["js"][:2] == (inlets, outlets)


def test_every_line_joins_existing_boxes_at_valid_ports(device):
    _, _, _, _, patcher = device
    boxes = boxes_of(patcher)
    assert patcher["lines"]
    for line in patcher["lines"]:
        (src, outlet), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert src in boxes and dst in boxes, line
        assert 0 <= outlet < boxes[src]["numoutlets"], line
        assert 0 <= inlet < boxes[dst]["numinlets"], line


def test_device_plumbing(device):
    _, tool, kind, _, patcher = device
    boxes = boxes_of(patcher)
    by_class = {}
    for box in boxes.values():
        by_class.setdefault(object_class(box), []).append(box["id"])
    links = {(l["patchline"]["source"][0], l["patchline"]["destination"][0]) for l in patcher["lines"]}
    (js,) = by_class["js"]
    assert boxes[js]["text"] == f"js mb_device.js {tool.name} {kind}"
    assert (by_class["live.thisdevice"][0], js) in links
    assert (js, by_class["udpsend"][0]) in links and boxes[by_class["udpsend"][0]]["text"] == "udpsend 127.0.0.1 9700"
    assert (by_class["udpreceive"][0], by_class["deferlow"][0]) in links and (by_class["deferlow"][0], js) in links
    if kind == "effect":
        assert (by_class["midiin"][0], by_class["midiout"][0]) in links, "MIDI must pass through"
    else:
        assert (js, by_class["live.miditool.in"][0]) in links and (by_class["live.miditool.in"][0], js) in links
        assert (js, by_class["live.miditool.out"][0]) in links


def expected_params(tool, kind):
    return [p for p in tool.params if not (kind != "effect" and p.name == "variations")]


def test_parameters_are_unique_and_match_the_tool_table(device):
    _, tool, kind, _, patcher = device
    boxes = boxes_of(patcher)
    params = {box["varname"]: (box, valueof(box)) for box in boxes.values() if valueof(box)}
    longnames = [v["parameter_longname"] for _, v in params.values()]
    assert len(longnames) == len(set(longnames)), "parameter long names must be unique"
    seen = set()
    for p in expected_params(tool, kind):
        if p.kind == "str":
            (text,) = [b for b in boxes.values() if b.get("varname") == p.name]
            assert text["maxclass"] == "textedit" and text["text"] == (p.default or "")
            store, value = params[f"{p.name}_store"]
            assert object_class(store) == "pattr" and value["parameter_type"] == 3
            seen |= {f"{p.name}_store"}
            continue
        box, value = params[p.name]
        seen.add(p.name)
        if p.kind == "enum":
            assert (box["maxclass"], value["parameter_type"]) == ("live.menu", 2)
            assert value["parameter_enum"] == list(p.choices)
            assert value["parameter_initial"] == [p.choices.index(p.default)]
        elif p.kind == "bool":
            assert (box["maxclass"], value["parameter_type"]) == ("live.toggle", 2)
            assert value["parameter_initial"] == [int(p.default)]
        elif p.default is not None:
            assert box["maxclass"] == "live.numbox"
            assert value["parameter_type"] == (1 if p.kind == "int" else 0)
            assert (value["parameter_mmin"], value["parameter_mmax"]) == (p.min, p.max)
            assert value["parameter_initial"] == [p.default]
        elif box["maxclass"] == "live.menu":  # optional small int: "off", maybe "Live", then every value
            items = value["parameter_enum"]
            assert items[0] == "off" and value["parameter_initial"] == [0]
            values = items[2:] if items[1] == build.FOLLOW_LIVE else items[1:]
            assert len(values) == p.max - p.min + 1
            assert value["parameter_mmax"] == len(items) - 1
        else:  # optional value: an on/off toggle that starts off, and the value itself
            toggle, on = params[f"{p.name}_on"]
            assert toggle["maxclass"] == "live.toggle" and on["parameter_initial"] == [0]
            assert value["parameter_type"] == (1 if p.kind == "int" else 0)
            assert (value["parameter_mmin"], value["parameter_mmax"]) == (p.min, p.max)
            seen.add(f"{p.name}_on")
    extra = set(params) - seen
    assert extra <= DEVICE_CONTROLS, f"controls that are neither tool parameters nor device controls: {extra}"
    assert "run" in extra


def test_every_control_reaches_the_script(device):
    _, _, _, _, patcher = device
    boxes = boxes_of(patcher)
    (js,) = [i for i, b in boxes.items() if object_class(b) == "js"]
    outgoing = {}
    for line in patcher["lines"]:
        outgoing.setdefault(line["patchline"]["source"][0], []).append(line["patchline"]["destination"][0])
    for box_id, box in boxes.items():
        if box["maxclass"].startswith("live.") and box.get("parameter_enable"):
            (prepend,) = outgoing[box_id]
            assert boxes[prepend]["text"] == f"prepend control {box['varname']}"
            assert outgoing[prepend] == [js]


def test_presentation_fits_the_device(device):
    _, _, _, _, patcher = device
    width = patcher["devicewidth"]
    shown = [b for b in boxes_of(patcher).values() if b.get("presentation")]
    assert shown
    for box in shown:
        x, y, w, h = box["presentation_rect"]
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= HEIGHT, (box["id"], box["presentation_rect"])
