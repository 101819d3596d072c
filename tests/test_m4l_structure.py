"""The committed Max for Live devices: rebuilt byte for byte, frozen, well-formed, wired and in range.

The container is read here with its own parser, written from the layout measured on a real frozen
Live 12 device (h1data/M4L-MIDI-tool-examples, retrigger-transform/Retrigger.amxd), not with the
builder's code. Parameter ranges are checked against `bridge.tools.TOOLS`, not against the
builder's own control list, so a builder that drifted from the tool table fails.
"""
import importlib.util
import json
import re
import struct
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bridge.params import Param
from bridge.tools import TOOLS, Tool

REPO = Path(__file__).resolve().parent.parent
M4L = REPO / "m4l"
HEIGHT = 169
# Live integer parameters hold at most 256 values (Cycling '74, Max for Live parameters).
LIVE_INT_VALUES = 256
EPHEMERAL = range(32768, 65536)  # Linux from 32768; macOS and Windows 49152-65535

spec = importlib.util.spec_from_file_location("m4l_build", M4L / "build.py")
build = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = build  # dataclasses look their module up while the class is made
spec.loader.exec_module(build)

DEVICES = {name: (tool, kind) for name, tool, kind in build.devices()}
# Controls a device has besides its tool's parameters.
DEVICE_CONTROLS = {"run", "replace", "pick_a", "pick_b", "a_track", "a_slot", "b_track", "b_slot"}


@dataclass
class Device:
    type: bytes
    meta: int
    patcher: dict
    files: dict  # embedded file name -> bytes
    entries: list  # the directory: (type, name, size, offset, flag)


def fields(data: bytes) -> list[tuple[bytes, bytes]]:
    """`tag + big-endian u32 length (header included) + value`, back to back."""
    out, at = [], 0
    while at < len(data):
        length = struct.unpack(">I", data[at + 4:at + 8])[0]
        assert length >= 8 and at + length <= len(data), f"bad field length at {at}"
        out.append((data[at:at + 4], data[at + 8:at + length]))
        at += length
    return out


def read_device(path: Path) -> Device:
    data = path.read_bytes()
    assert data[:4] == b"ampf" and struct.unpack("<I", data[4:8])[0] == 4
    assert data[12:16] == b"meta" and struct.unpack("<I", data[16:20])[0] == 4
    assert data[24:28] == b"ptch"
    block = data[32:]
    assert len(block) == struct.unpack("<I", data[28:32])[0], "ptch size does not match the rest of the file"
    assert block[:4] == b"mx@c", "not frozen: the ptch chunk must hold an mx@c block"
    header, zero, directory = struct.unpack(">III", block[4:16])
    assert (header, zero) == (16, 0)
    ((tag, listing),) = fields(block[directory:])
    assert tag == b"dlst"
    entries, files, patcher, end = [], {}, None, 16
    for tag, entry in fields(listing):
        assert tag == b"dire"
        parts = fields(entry)
        assert [t for t, _ in parts] == [b"type", b"fnam", b"sz32", b"of32", b"vers", b"flag", b"mdat"]
        values = dict(parts)
        name_bytes = values[b"fnam"]
        assert len(name_bytes) % 4 == 0 and name_bytes.endswith(b"\0"), "names are NUL-padded to 4 bytes"
        name = name_bytes.rstrip(b"\0").decode("utf-8")
        size, offset, vers, flag = (struct.unpack(">I", values[k])[0] for k in (b"sz32", b"of32", b"vers", b"flag"))
        assert offset == end and vers == 0, "files lie back to back from offset 16"
        body = block[offset:offset + size]
        end = offset + size
        entries.append((values[b"type"], name, size, offset, flag))
        if values[b"type"] == b"JSON":
            assert body.endswith(b"\n\0") and patcher is None
            patcher = json.loads(body[:-1].decode("utf-8"))
        else:
            assert values[b"type"] == b"TEXT"
            files[name] = body
    assert end == directory, "the directory follows the last file"
    return Device(data[8:12], struct.unpack("<I", data[20:24])[0], patcher, files, entries)


def boxes_of(patcher: dict) -> dict[str, dict]:
    return {item["box"]["id"]: item["box"] for item in patcher["boxes"]}


def object_class(box: dict) -> str:
    return box["text"].split()[0] if box["maxclass"] == "newobj" else box["maxclass"]


def valueof(box: dict) -> dict | None:
    enabled = box.get("parameter_enable") or box.get("saved_object_attributes", {}).get("parameter_enable")
    return box["saved_attribute_attributes"]["valueof"] if enabled else None


def required(source: str) -> list[str]:
    return [f"{name}.js" for name in re.findall(r'\brequire\("([\w.-]+)"\)', source)]


@pytest.fixture(params=sorted(DEVICES), ids=lambda name: name.removesuffix(".amxd"))
def device(request):
    name = request.param
    tool, kind = DEVICES[name]
    return name, tool, kind, read_device(M4L / name)


def test_rebuild_matches_the_committed_files():
    outputs = build.outputs()
    for path, data in outputs.items():
        assert path.is_file(), f"{path.relative_to(REPO)} is missing: run .venv/bin/python m4l/build.py"
        assert path.read_bytes() == data, f"{path.relative_to(REPO)} is stale: run .venv/bin/python m4l/build.py"
    committed = set(M4L.glob("*.amxd"))
    assert committed == {p for p in outputs if p.suffix == ".amxd"}, "an .amxd in m4l/ is not built by build.py"


def test_frozen_layout_as_max_writes_it(device):
    name, _, _, dev = device
    assert dev.meta == 7, "frozen devices carry meta 7"
    kind, first_name, _, offset, flag = dev.entries[0]
    assert (kind, first_name, offset, flag) == (b"JSON", name, 16, 0x11), "the patcher comes first, named as the file"
    assert all(flag == 0 for kind, *_, flag in dev.entries[1:])


def test_every_device_carries_every_script_it_loads(device):
    _, tool, kind, dev = device
    (js,) = [b for b in boxes_of(dev.patcher["patcher"]).values() if object_class(b) == "js"]
    todo, loaded = [js["text"].split()[1]], set()
    while todo:  # the js file and every module reached through require()
        name = todo.pop()
        assert name in dev.files, f"{name} is not in the device"
        loaded.add(name)
        todo += [m for m in required(dev.files[name].decode("utf-8")) if m not in loaded]
    assert loaded == set(dev.files), "the device carries exactly the scripts it loads"
    for name, data in dev.files.items():
        assert data == (M4L / "src" / name).read_bytes(), f"{name} differs from m4l/src"
    project = dev.patcher["patcher"]["project"]
    assert set(project["contents"]["code"]) == loaded
    assert {d["name"] for d in dev.patcher["patcher"]["dependency_cache"]} == loaded


def test_header_and_device_type(device):
    name, tool, kind, dev = device
    assert dev.type == {"effect": b"mmmm", "generator": b"nagg", "transformation": b"natt"}[kind]
    patcher = dev.patcher["patcher"]
    assert patcher["project"]["amxdtype"] == struct.unpack(">I", dev.type)[0]
    assert patcher["openinpresentation"] == 1
    assert patcher["devicewidth"] > 0
    if kind == "generator":
        assert tool.min_inputs == 0, "a Generator is handed no notes, so only a tool without input can be one"


def test_drumify_tool_is_a_transformation():
    assert read_device(M4L / "MB Drumify Tool.amxd").type == b"natt"


def test_every_box_has_its_class_inlets_and_outlets(device):
    *_, dev = device
    for box in boxes_of(dev.patcher["patcher"]).values():
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
    *_, dev = device
    patcher = dev.patcher["patcher"]
    boxes = boxes_of(patcher)
    assert patcher["lines"]
    for line in patcher["lines"]:
        (src, outlet), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert src in boxes and dst in boxes, line
        assert 0 <= outlet < boxes[src]["numoutlets"], line
        assert 0 <= inlet < boxes[dst]["numinlets"], line


def test_device_plumbing(device):
    _, tool, kind, dev = device
    patcher = dev.patcher["patcher"]
    boxes = boxes_of(patcher)
    by_class = {}
    for box in boxes.values():
        by_class.setdefault(object_class(box), []).append(box["id"])
    links = {(l["patchline"]["source"][0], l["patchline"]["source"][1], l["patchline"]["destination"][0])
             for l in patcher["lines"]}
    (js,) = by_class["js"]
    assert boxes[js]["text"] == f"js mb_device.js {tool.name} {kind}"
    assert (by_class["live.thisdevice"][0], 0, js) in links
    sends = {boxes[b]["text"]: b for b in by_class["udpsend"]}
    assert (js, build.JS_OUT_OSC, sends["udpsend 127.0.0.1 9700"]) in links
    probe = sends[f"udpsend 127.0.0.1 {build.REPLY_PORTS['first']}"]
    assert (js, build.JS_OUT_PROBE, probe) in links, "the reply-port check goes out of its own udpsend"
    (receive,) = by_class["udpreceive"]
    assert boxes[receive]["text"] == "udpreceive", "no fixed port shared by every instance"
    assert (js, build.JS_OUT_PORT, receive) in links
    (defer,) = by_class["deferlow"]
    assert (receive, 0, defer) in links and (defer, 0, js) in links
    if kind == "effect":
        assert (by_class["midiin"][0], 0, by_class["midiout"][0]) in links, "MIDI must pass through"
    else:
        tool_in, tool_out = by_class["live.miditool.in"][0], by_class["live.miditool.out"][0]
        assert {(js, build.JS_OUT_MIDITOOL_BANG, tool_in), (tool_in, 0, js), (tool_in, 1, js),
                (js, build.JS_OUT_MIDITOOL_NOTES, tool_out)} <= links


def test_reply_ports_lie_outside_every_ephemeral_range():
    first, count = build.REPLY_PORTS["first"], build.REPLY_PORTS["count"]
    assert first > 1024 and not set(range(first, first + count)) & set(EPHEMERAL)
    assert build.tool_table()["reply_ports"] == build.REPLY_PORTS, "the script reads the same range"


def expected_params(tool, kind):
    return [p for p in tool.params if not (kind != "effect" and p.name in build.MIDI_TOOL_FIXED)]


def check_number(value: dict, p: Param) -> None:
    """A number box for `p`: its range, and an int past Live's 256 values held as a float shown whole."""
    assert (value["parameter_mmin"], value["parameter_mmax"]) == (p.min, p.max)
    if p.kind == "float":
        assert value["parameter_type"] == 0 and value["parameter_unitstyle"] == 1
    elif p.max - p.min + 1 <= LIVE_INT_VALUES:
        assert value["parameter_type"] == 1
    else:
        assert value["parameter_type"] == 0 and value["parameter_unitstyle"] == 0, f"{p.name}: float shown as int"


def test_parameters_are_unique_and_match_the_tool_table(device):
    _, tool, kind, dev = device
    boxes = boxes_of(dev.patcher["patcher"])
    params = {box["varname"]: (box, valueof(box)) for box in boxes.values() if valueof(box)}
    longnames = [v["parameter_longname"] for _, v in params.values()]
    assert len(longnames) == len(set(longnames)), "parameter long names must be unique"
    seen = set()
    for p in expected_params(tool, kind):
        box, value = params[p.name]
        seen.add(p.name)
        default = build.MIDI_TOOL_DEFAULTS.get(p.name, p.default) if kind != "effect" else p.default
        if p.kind == "str":
            assert box["maxclass"] == "textedit" and box["text"] == (p.default or "")
            assert box["outputmode"] == 1, "one symbol out: a list would split '36,38,...' at the commas"
            assert (value["parameter_type"], value["parameter_invisible"]) == (3, 1), "a text saved with the set"
        elif p.choices:  # an enum, or an int that takes only some values: a menu of them
            assert (box["maxclass"], value["parameter_type"]) == ("live.menu", 2)
            assert value["parameter_enum"] == [str(c) for c in p.choices]
            assert value["parameter_initial"] == [p.choices.index(p.default)]
        elif p.kind == "bool":
            assert (box["maxclass"], value["parameter_type"]) == ("live.toggle", 2)
            assert value["parameter_initial"] == [int(p.default)]
        elif default is not None:
            assert box["maxclass"] == "live.numbox"
            check_number(value, p)
            assert value["parameter_initial"] == [default]
        elif box["maxclass"] == "live.menu":  # optional small int: "off", maybe "Live", then every value
            items = value["parameter_enum"]
            assert items[0] == "off" and value["parameter_initial"] == [0]
            values = items[2:] if items[1] == build.FOLLOW_LIVE else items[1:]
            assert len(values) == p.max - p.min + 1
            assert value["parameter_mmax"] == len(items) - 1
        else:  # optional value: an on/off toggle that starts off, and the value itself
            toggle, on = params[f"{p.name}_on"]
            assert toggle["maxclass"] == "live.toggle" and on["parameter_initial"] == [0]
            check_number(value, p)
            seen.add(f"{p.name}_on")
    extra = set(params) - seen
    assert extra <= DEVICE_CONTROLS, f"controls that are neither tool parameters nor device controls: {extra}"
    assert "run" in extra


def test_no_integer_parameter_holds_more_than_256_values(device):
    *_, dev = device
    for box in boxes_of(dev.patcher["patcher"]).values():
        value = valueof(box)
        if value and value["parameter_type"] == 1:
            assert value["parameter_mmax"] - value["parameter_mmin"] + 1 <= LIVE_INT_VALUES, value["parameter_longname"]


def test_midi_tools_use_a_fixed_seed(device):
    _, tool, kind, dev = device
    if kind == "effect" or "seed" not in {p.name for p in tool.params}:
        return
    value = valueof(next(b for b in boxes_of(dev.patcher["patcher"]).values() if b.get("varname") == "seed"))
    assert value["parameter_initial"] == [build.MIDI_TOOL_DEFAULTS["seed"]]
    assert not any(b.get("varname") == "seed_on" for b in boxes_of(dev.patcher["patcher"]).values())


def test_buttons_send_bang_and_are_not_automated(device):
    *_, dev = device
    buttons = [b for b in boxes_of(dev.patcher["patcher"]).values() if b["maxclass"] == "live.text"]
    assert buttons
    for box in buttons:
        value = valueof(box)
        assert box["mode"] == 0, "button mode: a click sends bang (Cycling '74 live.text reference)"
        assert value["parameter_initial_enable"] == 0 and value["parameter_invisible"] == 2


def test_scripting_names_are_unique(device):
    *_, dev = device
    boxes = boxes_of(dev.patcher["patcher"]).values()
    names = [b["varname"] for b in boxes if "varname" in b]
    assert len(names) == len(set(names))
    assert not [b for b in boxes if object_class(b) == "pattr"], "a pattr named like a control clashes with it"


def test_every_control_reaches_the_script(device):
    *_, dev = device
    patcher = dev.patcher["patcher"]
    boxes = boxes_of(patcher)
    (js,) = [i for i, b in boxes.items() if object_class(b) == "js"]
    outgoing = {}
    for line in patcher["lines"]:
        outgoing.setdefault(line["patchline"]["source"][0], []).append(line["patchline"]["destination"][0])
    for box_id, box in boxes.items():
        if valueof(box) and box["maxclass"] != "newobj":
            (prepend,) = outgoing[box_id]
            selector = "text" if box["maxclass"] == "textedit" else "control"
            assert boxes[prepend]["text"] == f"prepend {selector} {box['varname']}"
            assert outgoing[prepend] == [js]


def test_presentation_fits_the_device(device):
    *_, dev = device
    patcher = dev.patcher["patcher"]
    width = patcher["devicewidth"]
    shown = [b for b in boxes_of(patcher).values() if b.get("presentation")]
    assert shown
    for box in shown:
        x, y, w, h = box["presentation_rect"]
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= HEIGHT, (box["id"], box["presentation_rect"])


def test_a_new_tool_needs_only_its_table_entry(tmp_path):
    """A future Transformation (e.g. harmonize) builds from its Params alone, wide ints included."""
    params = (Param("voices", "int", 3, "", 1, 4), Param("spread", "int", None, "", 0, 5000),
              Param("style", "enum", "close", "", choices=("close", "open")), Param("chords", "str", "I IV V", ""),
              *[p for p in TOOLS["continue"].params if p.name in ("seed", "variations")])
    tool = Tool("harmonize", "Add voices.", params, 1, 1, lambda clips, params, ctx: clips)
    scripts = build.device_scripts()
    path = tmp_path / "MB Harmonize Tool.amxd"
    path.write_bytes(build.amxd("transformation", path.name, build.build_patcher(tool, "transformation", list(scripts)),
                                scripts))
    dev = read_device(path)
    assert dev.type == b"natt" and set(dev.files) == set(scripts)
    values = {b["varname"]: valueof(b) for b in boxes_of(dev.patcher["patcher"]).values() if valueof(b)}
    assert set(values) == {"run", "voices", "spread_on", "spread", "style", "chords", "seed"}
    check_number(values["spread"], replace(params[1]))
    assert values["seed"]["parameter_initial"] == [0]
