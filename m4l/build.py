"""Build the Max for Live devices from the tool table.

Every `live.*` control (name, type, range, default, menu items) is derived from
`bridge.tools.TOOLS`, so a range changed in a tool's `Param` reaches the devices by running
this script again; nothing here lists a tool parameter by hand. The same derivation is written
to `m4l/src/tooltable.js`, which the device JavaScript reads to turn control values back into
request parameters, so the patcher and the script cannot disagree.

Every device is frozen: the .amxd carries the patcher and every script its `js` loads,
including the modules reached through `require`, in the container layout Max writes (`frozen`).
Max finds a frozen device's files inside the device, so a device dragged from any folder works
with nothing on Max's search path (Cycling '74, "Freezing a Max for Live device").

Run `.venv/bin/python m4l/build.py`. Output is deterministic (fixed dates, stable ids) so
`tests/test_m4l_structure.py` can rebuild and compare with the committed files.
"""
from __future__ import annotations

import json
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from bridge import protocol as P  # noqa: E402
from bridge.clip import MODES  # noqa: E402
from bridge.duet import wire as duet_wire  # noqa: E402
from bridge.duet.modes import MODES as PLAY_ALONG, Mode  # noqa: E402
from bridge.install import DEVICE_KINDS  # noqa: E402
from bridge.params import Param  # noqa: E402
from bridge.tools import TOOLS, Tool  # noqa: E402

DEVICE_HEIGHT = 169
SRC = ROOT / "src"
JS_FILE = "mb_device.js"
DUET_JS_FILE = "mb_duet.js"  # MB Duet and MB Follow
TOOL_TABLE_FILE = "tooltable.js"
REQUIRE = re.compile(r'\brequire\("([A-Za-z0-9_.-]+)"\)')
PREFIX = "MB"
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# A menu instead of toggle + number when an optional int has at most this many values.
MENU_MAX_VALUES = 24
# Menu entry that means "take the key from Live" (the set's scale, or the MIDI Tool's clip scale).
FOLLOW_LIVE = "Live"

# Live integer parameters hold at most 256 values (Cycling '74, Max for Live parameters: "the
# native integer representation is limited to a range of 0-255"); a wider int becomes a float
# parameter shown as an integer, as that page advises.
LIVE_INT_VALUES = 256

# Device kinds and their .amxd type codes (bridge.install reads them to sort the devices into
# Live's User Library).
KIND_CODES = {kind: code for code, kind in DEVICE_KINDS.items()}
# Live 12 MIDI Tools. A Generator receives no notes (Live 12 manual, MIDI Tools), so only a tool
# that needs no input can be one; every tool that reworks notes is a Transformation.
MIDI_TOOLS = {"generate": "generator", "drumify": "transformation", "continue": "transformation",
              "groove": "transformation", "harmonize": "transformation"}
# Values a MIDI Tool always sends: one result in place, and Continue keeps its primer, because
# Live replaces every note it handed over with the answer (a note left out is deleted).
MIDI_TOOL_FIXED = {"variations": 1, "include_primer": 1}
# Ableton asks a MIDI Tool for the same output from the same input and settings, so an optional
# value that would otherwise vary per run (a seed) gets a fixed default there.
MIDI_TOOL_DEFAULTS = {"seed": 0}

# Inlets, outlets and outlet types of every object class the builder places. Boxes get these
# values, and the structure test checks every patch line against them.
OBJECTS: dict[str, tuple[int, int, list[str]]] = {
    "live.numbox": (1, 2, ["", "float"]),
    "live.menu": (1, 3, ["", "", "float"]),
    "live.toggle": (1, 1, [""]),
    "live.text": (1, 2, ["", ""]),
    "live.comment": (1, 0, []),
    "comment": (1, 0, []),
    "textedit": (1, 4, ["", "int", "", ""]),
    "live.thisdevice": (1, 3, ["bang", "int", "int"]),
    "midiin": (1, 1, ["int"]),
    "midiout": (1, 0, []),
    "udpsend": (1, 0, []),
    "udpreceive": (1, 1, [""]),
    "deferlow": (1, 1, [""]),
    "prepend": (1, 1, [""]),
    "live.miditool.in": (1, 3, ["", "", ""]),
    "live.miditool.out": (1, 0, []),
    # MB Duet and MB Follow. midiparse: 7 outlets by MIDI message type; midiformat: 7 inlets, the
    # same types in; when: time in bars/beats/units, then in ticks; route: one outlet per
    # channel number and one for the rest (Cycling '74 references).
    "midiparse": (1, 7, ["", "", "", "int", "int", "int", "int"]),
    "midiformat": (7, 1, ["int"]),
    "t": (1, 2, ["", "bang"]),  # only `t l b` is placed
    "when": (1, 2, ["", "float"]),
    "timepoint": (1, 1, ["bang"]),
    "zl": (2, 2, ["", ""]),
    "route": (2, 6, ["", "", "", "", "", ""]),
    # mb_device.js declares inlets = 4 and outlets = 6 (see its header comment).
    "js": (4, 6, ["", "", "", "", "", ""]),
}
UI_CLASSES = {"live.numbox", "live.menu", "live.toggle", "live.text", "live.comment", "comment", "textedit"}

# js inlets and outlets, by role (mb_device.js uses the same numbers).
JS_IN_CONTROL, JS_IN_OSC, JS_IN_NOTES, JS_IN_CONTEXT = 0, 1, 2, 3
JS_OUT_OSC, JS_OUT_STATUS, JS_OUT_PORT, JS_OUT_MIDITOOL_BANG, JS_OUT_MIDITOOL_NOTES, JS_OUT_PROBE = 0, 1, 2, 3, 4, 5
JS_OUT_ARM, JS_OUT_LOAD = 3, 4  # mb_duet.js: the same outlets, arming and loading its channels
# The timepoint + zl reg pairs an MB Duet or MB Follow plays answers through: while one waits for
# its tick the script loads the next (m4l/src/duetcore.js). `route` in OBJECTS has one outlet
# more than channels, and one more again for the rest.
CHANNELS = 4
TICKS_PER_BEAT = 480  # Max's ticks per quarter note (Cycling '74, "Time Value Syntax")

# Reply ports: each device instance listens on its own port in this range, below every OS's
# ephemeral range (Linux from 32768, macOS and Windows 49152-65535), and proves the bind with a
# datagram to itself before using it (m4l/src/replyport.js).
REPLY_PORTS = {"first": 20000, "count": 10000}

# The frozen container (`frozen`), as measured on a real frozen Live 12 device.
META_FROZEN = 7  # the `meta` value of frozen devices (0 or 1 in unfrozen ones)
MXC_HEADER = 16
# Modification time of every embedded file, seconds since 1904 (2024-01-01): fixed, so the
# build is deterministic.
MDAT = 3786912000

# Presentation grid: a cell is a label above one control.
MARGIN, CELL_W, CELL_H, LABEL_H, WIDGET_H = 4, 76, 34, 14, 16
ROWS = 4  # cells per column: 4 x 34 = 136 px, the status line below
STATUS_Y, STATUS_H = 146, 18
TEXT_CELL_W = 2 * CELL_W + MARGIN


@dataclass
class Control:
    """One device control: a Live parameter (live.*), or a text field saved as a blob parameter."""

    id: str  # varname, and the name the script receives the value under
    cls: str
    longname: str
    shortname: str
    param: str | None = None  # the tool Param this control sets (None for device controls)
    role: str = "value"  # value | enabled | menu | text | run | replace | pick | clip
    type: int | None = None  # parameter_type: 0 float, 1 int, 2 enum, 3 blob
    mmin: float | None = None
    mmax: float | None = None
    initial: Any = None
    items: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)  # menu index -> request value (None: omit)
    whole: bool = False  # shown as an integer (a float parameter holding an int wider than 256 values)
    visibility: int = 0  # parameter_invisible: 0 automated and stored, 1 stored only, 2 hidden
    help: str = ""

    def table_entry(self) -> dict[str, Any]:
        out = {"id": self.id, "param": self.param, "role": self.role}
        if self.values:
            out["values"] = self.values
        if self.initial is not None:
            out["initial"] = self.initial
        return out


def title(name: str) -> str:
    return name.replace("_", " ").title()


def tool_title(tool: Tool | Mode) -> str:
    return tool.name.title()


def number_kind(param_kind: str, low: float, high: float) -> tuple[int, bool]:
    """(parameter_type, shown as integer): an int wider than Live's 256 values is a float."""
    if param_kind != "int":
        return 0, False
    return (1, True) if high - low + 1 <= LIVE_INT_VALUES else (0, True)


def number_control(control_id: str, long: str, short: str, param_kind: str, low: float, high: float,
                   initial: float, **extra: Any) -> Control:
    kind, whole = number_kind(param_kind, low, high)
    return Control(control_id, "live.numbox", long, short, type=kind, mmin=low, mmax=high, initial=initial,
                   whole=whole, **extra)


def param_controls(tool: Tool | Mode, param: Param, kind: str) -> list[Control]:
    """The control(s) for one Param; an optional value (default None) gets an "off" state."""
    long_base = f"{PREFIX} {tool_title(tool)} {title(param.name)}"
    short = title(param.name)
    common = {"param": param.name, "help": param.help}
    default = MIDI_TOOL_DEFAULTS.get(param.name, param.default) if kind != "effect" else param.default
    if param.kind == "str":
        return [Control(param.name, "textedit", long_base, short, role="text", type=3, initial=default,
                        visibility=1, **common)]
    if param.choices:  # an enum, or an int taking only some values (bars: 1, 2, 4, 8)
        return [Control(param.name, "live.menu", long_base, short, type=2, mmin=0, mmax=len(param.choices) - 1,
                        initial=param.choices.index(default), items=[str(c) for c in param.choices],
                        values=list(param.choices), role="menu", **common)]
    if param.kind == "bool":
        return [Control(param.name, "live.toggle", long_base, short, type=2, mmin=0, mmax=1,
                        initial=int(default), items=["off", "on"], **common)]
    if default is not None:
        return [number_control(param.name, long_base, short, param.kind, param.min, param.max, default, **common)]
    if param.kind == "int" and param.max - param.min + 1 <= MENU_MAX_VALUES:
        values = list(range(int(param.min), int(param.max) + 1))
        labels = [NOTE_NAMES[v] for v in values] if param.name == "scale_root" else [str(v) for v in values]
        follow = [FOLLOW_LIVE] if param.name == "scale_root" else []
        return [Control(param.name, "live.menu", long_base, short, type=2, mmin=0,
                        mmax=len(values) + len(follow), initial=0, items=["off", *follow, *labels],
                        values=[None, *([FOLLOW_LIVE] if follow else []), *values], role="menu", **common)]
    return [
        Control(f"{param.name}_on", "live.toggle", f"{long_base} On", f"{short} On", type=2, mmin=0, mmax=1,
                initial=0, items=["off", "on"], role="enabled", **common),
        number_control(param.name, long_base, short, param.kind, param.min, param.max, param.min, **common),
    ]


def button(control_id: str, long: str, short: str, role: str, help_text: str) -> Control:
    """A live.text in button mode: it sends `bang` when clicked (Cycling '74 live.text reference).
    Hidden from automation: pressing is an action, not a state to save."""
    return Control(control_id, "live.text", long, short, role=role, type=2, mmin=0, mmax=1, initial=0,
                   items=["off", "on"], visibility=2, help=help_text)


def device_controls(tool: Tool, kind: str) -> list[Control]:
    """The controls that are not tool parameters: run, replace, and Interpolate's clip pickers."""
    base = f"{PREFIX} {tool_title(tool)}"
    run = button("run", f"{base} Run", "Run", "run", f"{tool.help} Reads the input, asks the bridge, writes the result.")
    if kind != "effect":
        return [run]
    out = [run, Control("replace", "live.toggle", f"{base} Replace", "Replace", role="replace", type=2, mmin=0,
                        mmax=1, initial=0, items=["off", "on"],
                        help="Off: write to the next empty slots. On: overwrite the slots right below.")]
    if tool.max_inputs == 2:
        for clip in ("a", "b"):
            upper = clip.upper()
            out.append(button(f"pick_{clip}", f"{base} Use Selected {upper}", f"Set {upper}", "pick",
                              f"Take the selected clip as clip {upper}."))
            for part in ("track", "slot"):
                out.append(number_control(f"{clip}_{part}", f"{base} {upper} {part.title()}",
                                          f"{upper} {part.title()}", "int", 0, 999, 0, role="clip", visibility=1,
                                          help=f"Clip {upper}: {part} number as Live shows it (0: not chosen)."))
    return out


def controls_for(tool: Tool, kind: str) -> list[Control]:
    params = [p for p in tool.params if not (kind != "effect" and p.name in MIDI_TOOL_FIXED)]
    return device_controls(tool, kind) + [c for p in params for c in param_controls(tool, p, kind)]


class Patcher:
    """Boxes and lines with ids handed out in order, so the output is the same every run."""

    def __init__(self) -> None:
        self.boxes: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self._y = 400  # patching (edit mode) positions for non-UI objects

    def add(self, cls: str, text: str | None = None, rect: list[float] | None = None,
            presentation: list[float] | None = None, **attrs: Any) -> str:
        box_id = f"obj-{len(self.boxes) + 1}"
        n_in, n_out, types = OBJECTS[cls]
        maxclass = cls if cls in UI_CLASSES else "newobj"
        box: dict[str, Any] = {"id": box_id, "maxclass": maxclass, "numinlets": n_in, "numoutlets": n_out}
        if types:
            box["outlettype"] = types
        if rect is None:
            rect = [20.0 + 160.0 * (len(self.boxes) % 6), float(self._y), 150.0, 22.0]
            if len(self.boxes) % 6 == 5:
                self._y += 40
        box["patching_rect"] = [float(v) for v in rect]
        if presentation is not None:
            box["presentation"] = 1
            box["presentation_rect"] = [float(v) for v in presentation]
        if text is not None:
            box["text"] = text
        box.update(attrs)
        self.boxes.append({"box": box})
        return box_id

    def connect(self, source: str, outlet: int, destination: str, inlet: int) -> None:
        self.lines.append({"patchline": {"destination": [destination, inlet], "source": [source, outlet]}})


def valueof(control: Control) -> dict[str, Any]:
    out: dict[str, Any] = {"parameter_longname": control.longname, "parameter_shortname": control.shortname,
                           "parameter_type": control.type, "parameter_info": control.help}
    if control.visibility:
        out["parameter_invisible"] = control.visibility
    if control.type == 3:
        return out  # a blob: the text itself, saved with the set
    out.update(parameter_mmin=float(control.mmin), parameter_mmax=float(control.mmax), parameter_initial_enable=1,
               parameter_initial=[control.initial])
    if control.type == 2:
        out["parameter_enum"] = control.items
    else:
        out["parameter_unitstyle"] = 0 if control.whole else 1  # 0: Int display, 1: Float
    if control.cls == "live.text":
        out["parameter_initial_enable"] = 0  # buttons must not fire when the set loads
        del out["parameter_initial"]
    return out


def place_cells(controls: list[Control]) -> tuple[dict[str, list[float]], float]:
    """Presentation rects of each control's cell (column-major, ROWS per column); text fields
    get double-width cells after the others. Returns the rects and the device width."""
    rects: dict[str, list[float]] = {}
    narrow = [c for c in controls if c.cls != "textedit"]
    wide = [c for c in controls if c.cls == "textedit"]
    for i, control in enumerate(narrow):
        col, row = divmod(i, ROWS)
        rects[control.id] = [MARGIN + col * (CELL_W + MARGIN), MARGIN + row * CELL_H, CELL_W, CELL_H]
    first_wide_x = MARGIN + (-(-len(narrow) // ROWS)) * (CELL_W + MARGIN)
    for i, control in enumerate(wide):
        col, row = divmod(i, ROWS)
        rects[control.id] = [first_wide_x + col * (TEXT_CELL_W + MARGIN), MARGIN + row * CELL_H, TEXT_CELL_W, CELL_H]
    right = max(r[0] + r[2] for r in rects.values())
    return rects, right + MARGIN


def bridge_wiring(p: Patcher, js_text: str, width: float) -> str:
    """What every device has: live.thisdevice, the js, udpsend to the bridge, udpreceive and the
    reply-port probe, deferlow before the script, the status line. Returns the js box id."""
    this_device = p.add("live.thisdevice", "live.thisdevice")
    script = js_text.split()[1]
    js = p.add("js", js_text, saved_object_attributes={"filename": script, "parameter_enable": 0})
    p.connect(this_device, 0, js, JS_IN_CONTROL)
    udpsend = p.add("udpsend", f"udpsend 127.0.0.1 {P.DEFAULT_PORT}")
    # No port argument: the script opens the device's own port once it knows the device's id.
    udpreceive = p.add("udpreceive", "udpreceive")
    probe = p.add("udpsend", f"udpsend 127.0.0.1 {REPLY_PORTS['first']}")  # the bind check, to itself
    defer = p.add("deferlow", "deferlow")  # replies reach the script on the low-priority thread
    p.connect(js, JS_OUT_OSC, udpsend, 0)
    p.connect(js, JS_OUT_PORT, udpreceive, 0)
    p.connect(js, JS_OUT_PROBE, probe, 0)
    p.connect(udpreceive, 0, defer, 0)
    p.connect(defer, 0, js, JS_IN_OSC)
    status = p.add("comment", presentation=[MARGIN, STATUS_Y, width - 2 * MARGIN, STATUS_H],
                   rect=[20.0, 360.0, 300.0, 20.0], text="Not started", varname="status", fontsize=10.0)
    p.connect(js, JS_OUT_STATUS, status, 0)
    return js


def control_boxes(p: Patcher, controls: list[Control], rects: dict[str, list[float]], js: str) -> None:
    """Each control with its label, sending `control <id> <value>` (or `text <id> ...`) to the js."""
    for n, control in enumerate(controls):
        x, y, w, _ = rects[control.id]
        edit_x, edit_y = 20.0 + 170.0 * (n % 6), 40.0 + 70.0 * (n // 6)
        p.add("live.comment", presentation=[x, y, w, LABEL_H], rect=[edit_x, edit_y, w, 18.0],
              text=control.shortname, textjustification=0, fontsize=9.0)
        widget = [x, y + LABEL_H + 2, w if control.cls != "live.toggle" else WIDGET_H - 1,
                  WIDGET_H if control.cls != "live.toggle" else WIDGET_H - 1]
        attrs: dict[str, Any] = {"parameter_enable": 1, "varname": control.id,
                                 "saved_attribute_attributes": {"valueof": valueof(control)}}
        if control.cls == "textedit":
            # One symbol out ("text 36,38,..."), not a list split at the commas; Return enters it.
            attrs.update(outputmode=1, keymode=1, lines=1, text=control.initial or "", fontsize=9.0)
            selector = "text"
        else:
            selector = "control"
        if control.cls == "live.text":
            attrs.update(mode=0, text=control.shortname, texton=control.shortname)  # mode 0: button
        box = p.add(control.cls, presentation=widget, rect=[edit_x, edit_y + 20.0, widget[2], widget[3]], **attrs)
        to_js = p.add("prepend", f"prepend {selector} {control.id}")
        p.connect(box, 0, to_js, 0)
        p.connect(to_js, 0, js, JS_IN_CONTROL)


def patcher_json(p: Patcher, kind: str, width: float, description: str, scripts: list[str]) -> dict[str, Any]:
    code = KIND_CODES[kind]
    return {"patcher": {
        "fileversion": 1,
        "appversion": {"major": 9, "minor": 0, "revision": 0, "architecture": "x64", "modernui": 1},
        "classnamespace": "box",
        "rect": [100.0, 100.0, 1100.0, 700.0],
        "openinpresentation": 1,
        "default_fontsize": 10.0,
        "gridsize": [15.0, 15.0],
        "devicewidth": float(width),
        "description": description,
        "project": {"version": 1, "creationdate": MDAT, "modificationdate": MDAT,
                    "viewrect": [0.0, 0.0, 300.0, 500.0], "autoorganize": 1, "hideprojectwindow": 1,
                    "showdependencies": 1, "autolocalize": 0,
                    "contents": {"patchers": {}, "code": {name: {"kind": "javascript", "local": 1} for name in scripts}},
                    "layout": {}, "searchpath": {}, "detailsvisible": 0,
                    "amxdtype": struct.unpack(">I", code)[0], "readonly": 1, "devpathtype": 0, "devpath": ".",
                    "sortmode": 0, "viewmode": 0, "includepackages": 0},
        "boxes": p.boxes,
        "lines": p.lines,
        "dependency_cache": [{"name": name, "type": "TEXT", "implicit": 1} for name in scripts],
        "autosave": 0,
    }}


def build_patcher(tool: Tool, kind: str, scripts: list[str]) -> dict[str, Any]:
    controls = controls_for(tool, kind)
    rects, width = place_cells(controls)
    p = Patcher()
    js = bridge_wiring(p, f"js {JS_FILE} {tool.name} {kind}", width)
    if kind == "effect":
        midiin = p.add("midiin", "midiin")
        midiout = p.add("midiout", "midiout")
        p.connect(midiin, 0, midiout, 0)  # a MIDI effect passes the track's MIDI through untouched
    else:
        tool_in = p.add("live.miditool.in", "live.miditool.in")
        tool_out = p.add("live.miditool.out", "live.miditool.out")
        p.connect(js, JS_OUT_MIDITOOL_BANG, tool_in, 0)
        p.connect(tool_in, 0, js, JS_IN_NOTES)
        p.connect(tool_in, 1, js, JS_IN_CONTEXT)
        p.connect(js, JS_OUT_MIDITOOL_NOTES, tool_out, 0)
    control_boxes(p, controls, rects, js)
    return patcher_json(p, kind, width, f"magenta-bridge {tool.name}: {tool.help}", scripts)


# MB Duet and MB Follow ------------------------------------------------------------------------

def duet_controls(mode: Mode) -> list[Control]:
    """On, then the mode's parameters as a MIDI effect shows a tool's."""
    on = Control("on", "live.toggle", f"{PREFIX} {tool_title(mode)} On", "On", role="on", type=2, mmin=0, mmax=1,
                 initial=1, items=["off", "on"], help="On: play along with the bridge. Off: your notes only pass through.")
    return [on] + [c for p in mode.params for c in param_controls(mode, p, "effect")]


def build_duet_patcher(mode: Mode, scripts: list[str]) -> dict[str, Any]:
    """The player's notes pass through and, stamped with the transport's time, reach the script;
    the answers play from CHANNELS timepoint + zl reg pairs the script loads and arms
    (m4l/src/duetcore.js says why: js itself runs on the low-priority thread)."""
    controls = duet_controls(mode)
    rects, width = place_cells(controls)
    p = Patcher()
    js = bridge_wiring(p, f"js {DUET_JS_FILE} {mode.name}", width)
    midiin = p.add("midiin", "midiin")
    midiout = p.add("midiout", "midiout")
    p.connect(midiin, 0, midiout, 0)  # the player's notes pass through untouched
    parse = p.add("midiparse", "midiparse")
    stamp = p.add("t", "t l b")  # right to left: first the time, then the note
    when = p.add("when", "when")
    tick = p.add("prepend", "prepend tick")
    note = p.add("prepend", "prepend note")
    p.connect(midiin, 0, parse, 0)
    p.connect(parse, 0, stamp, 0)
    p.connect(stamp, 1, when, 0)
    p.connect(when, 1, tick, 0)
    p.connect(tick, 0, js, JS_IN_CONTROL)
    p.connect(stamp, 0, note, 0)
    p.connect(note, 0, js, JS_IN_CONTROL)
    routes = " ".join(str(c) for c in range(CHANNELS + 1))
    arm = p.add("route", f"route {routes}")
    load = p.add("route", f"route {routes}")
    p.connect(js, JS_OUT_ARM, arm, 0)
    p.connect(js, JS_OUT_LOAD, load, 0)
    pairs = p.add("zl", "zl iter 2")
    out = p.add("midiformat", "midiformat")
    p.connect(load, CHANNELS, pairs, 0)  # the last channel number plays at once (note-offs of a cut)
    p.connect(pairs, 0, out, 0)
    p.connect(out, 0, midiout, 0)
    for c in range(CHANNELS):
        timepoint = p.add("timepoint", "timepoint")
        held = p.add("zl", "zl reg")
        fired = p.add("prepend", f"prepend fired {c}")
        p.connect(arm, c, timepoint, 0)
        p.connect(load, c, held, 1)
        p.connect(timepoint, 0, held, 0)
        p.connect(timepoint, 0, fired, 0)
        p.connect(held, 0, pairs, 0)
        p.connect(fired, 0, js, JS_IN_CONTROL)
    control_boxes(p, controls, rects, js)
    return patcher_json(p, "effect", width, f"magenta-bridge {mode.name}: {mode.help}", scripts)


def chunk(tag: bytes, value: bytes) -> bytes:
    """A tag, a big-endian length that counts the 8 header bytes, and the value."""
    return tag + struct.pack(">I", 8 + len(value)) + value


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def directory_entry(kind: bytes, name: str, size: int, offset: int, flag: int) -> bytes:
    name_bytes = name.encode("utf-8") + b"\0"
    name_bytes += b"\0" * (-len(name_bytes) % 4)  # NUL-terminated, padded to a multiple of 4
    return chunk(b"dire", chunk(b"type", kind) + chunk(b"fnam", name_bytes) + chunk(b"sz32", u32(size))
                 + chunk(b"of32", u32(offset)) + chunk(b"vers", u32(0)) + chunk(b"flag", u32(flag))
                 + chunk(b"mdat", u32(MDAT)))


def frozen(device_name: str, patcher: dict[str, Any], scripts: dict[str, bytes]) -> bytes:
    """A frozen device's `ptch` payload: an `mx@c` block (header: 16, 0, offset of the directory),
    the patcher JSON (ending with a newline and a NUL) and each script back to back from offset 16, then a `dlst`
    directory with one `dire` per file (type, name, size, offset, version, flags, date).

    Layout measured byte by byte on a real frozen Live 12 device with two scripts
    (h1data/M4L-MIDI-tool-examples, retrigger-transform/Retrigger.amxd); no content comes from it.
    """
    files = [(b"JSON", device_name, (json.dumps(patcher, indent=1, ensure_ascii=False) + "\n").encode() + b"\0", 0x11)]
    files += [(b"TEXT", name, data, 0) for name, data in scripts.items()]
    body, entries, offset = b"", b"", MXC_HEADER
    for kind, name, data, flag in files:
        entries += directory_entry(kind, name, len(data), offset, flag)
        body += data
        offset += len(data)
    return b"mx@c" + u32(MXC_HEADER) + u32(0) + u32(offset) + body + chunk(b"dlst", entries)


def amxd(kind: str, device_name: str, patcher: dict[str, Any], scripts: dict[str, bytes]) -> bytes:
    """The .amxd file: `ampf` + device type, `meta`, then `ptch` with the frozen block (these three
    lengths are little-endian)."""
    payload = frozen(device_name, patcher, scripts)
    return (b"ampf" + struct.pack("<I", 4) + KIND_CODES[kind] + b"meta" + struct.pack("<II", 4, META_FROZEN)
            + b"ptch" + struct.pack("<I", len(payload)) + payload)


def device_scripts(entry: str = JS_FILE) -> dict[str, bytes]:
    """`entry` (mb_device.js, or mb_duet.js for the Duet devices) and every module it reaches
    through require(), the generated tool table included, in the order they are first reached."""
    generated = {TOOL_TABLE_FILE: tool_table_js().encode("utf-8")}
    out: dict[str, bytes] = {}
    todo = [entry]
    while todo:
        name = todo.pop(0)
        if name in out:
            continue
        out[name] = generated.get(name) or (SRC / name).read_bytes()
        todo += [f"{module}.js" for module in REQUIRE.findall(out[name].decode("utf-8"))]
    return out


def devices() -> list[tuple[str, Tool, str]]:
    """(file name, tool, kind): an effect per tool, and the Live 12 MIDI Tools."""
    out = [(f"{PREFIX} {tool_title(t)}.amxd", t, "effect") for t in TOOLS.values()]
    out += [(f"{PREFIX} {tool_title(TOOLS[name])} Tool.amxd", TOOLS[name], kind) for name, kind in MIDI_TOOLS.items()]
    return out


def duet_devices() -> list[tuple[str, Mode]]:
    """(file name, mode): MB Duet and MB Follow, MIDI effects that play along."""
    return [(f"{PREFIX} {tool_title(mode)}.amxd", mode) for mode in PLAY_ALONG.values()]


def param_specs(params: tuple[Param, ...]) -> list[dict[str, Any]]:
    return [{"name": p.name, "kind": p.kind, "default": p.default} for p in params]


def tool_table() -> dict[str, Any]:
    """What the device script needs to know: controls per device kind, protocol constants, modes."""
    tools = {}
    for tool in TOOLS.values():
        params = param_specs(tool.params)
        kinds = ["effect"] + ([MIDI_TOOLS[tool.name]] if tool.name in MIDI_TOOLS else [])
        tools[tool.name] = {"color": tool.color, "inputs": [tool.min_inputs, tool.max_inputs], "params": params,
                            "controls": {k: [c.table_entry() for c in controls_for(tool, k)] for k in kinds}}
    play_along = {name: {"help": mode.help, "params": param_specs(mode.params),
                         "controls": [c.table_entry() for c in duet_controls(mode)]} for name, mode in PLAY_ALONG.items()}
    return {"tools": tools, "fixed_in_midi_tools": MIDI_TOOL_FIXED, "follow_live": FOLLOW_LIVE,
            "modes": {name: list(steps) for name, steps in MODES.items()}, "reply_ports": REPLY_PORTS,
            "protocol": {"prefix": P.PREFIX, "chunk_notes": P.CHUNK_NOTES},
            "play_along": {"prefix": duet_wire.PREFIX, "channels": CHANNELS, "ticks_per_beat": TICKS_PER_BEAT,
                           "modes": play_along}}


def tool_table_js() -> str:
    body = json.dumps(tool_table(), indent=1, sort_keys=True)
    return ("// Generated by m4l/build.py from bridge.tools.TOOLS; do not edit.\n"
            "// The controls each device has, and how their values become request parameters.\n"
            f"var TOOL_TABLE = {body};\n"
            "if (typeof exports !== \"undefined\") { exports.TOOL_TABLE = TOOL_TABLE; }\n")


def outputs() -> dict[Path, bytes]:
    scripts = device_scripts()
    files = {ROOT / name: amxd(kind, name, build_patcher(tool, kind, list(scripts)), scripts)
             for name, tool, kind in devices()}
    duet_scripts = device_scripts(DUET_JS_FILE)
    files |= {ROOT / name: amxd("effect", name, build_duet_patcher(mode, list(duet_scripts)), duet_scripts)
              for name, mode in duet_devices()}
    files[SRC / TOOL_TABLE_FILE] = scripts[TOOL_TABLE_FILE]
    return files


def main() -> None:
    for path, data in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT.parent)} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
