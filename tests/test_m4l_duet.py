"""MB Duet and MB Follow as built: frozen with their scripts, controls from the Duet modes' table,
and the patch that stamps the player's notes and plays answers on the transport (m4l/build.py,
`build_duet_patcher`; m4l/src/duetcore.js says why each part is there). Read with
tests/test_m4l_structure.py's own container parser, not the builder's code."""
import re

import pytest
from test_m4l_structure import (M4L, boxes_of, build, check_number, object_class, read_device, required,
                                valueof)

from bridge.duet.modes import MODES

DEVICES = {name: mode for name, mode in build.duet_devices()}


@pytest.fixture(params=sorted(DEVICES), ids=lambda name: name.removesuffix(".amxd"))
def device(request):
    return DEVICES[request.param], read_device(M4L / request.param)


def links(patcher: dict) -> set[tuple[str, int, str, int]]:
    return {(*l["patchline"]["source"], *l["patchline"]["destination"]) for l in patcher["lines"]}


def test_one_device_per_mode_a_midi_effect_frozen_with_every_script_it_loads(device):
    mode, dev = device
    assert set(DEVICES.values()) == set(MODES.values())
    assert dev.type == b"mmmm" and dev.meta == 7
    (js,) = [b for b in boxes_of(dev.patcher["patcher"]).values() if object_class(b) == "js"]
    assert js["text"] == f"js mb_duet.js {mode.name}"
    todo, loaded = ["mb_duet.js"], set()
    while todo:
        name = todo.pop()
        loaded.add(name)
        todo += [m for m in required(dev.files[name].decode("utf-8")) if m not in loaded]
    assert loaded == set(dev.files) == {"mb_duet.js", "duetcore.js", "devicecore.js", "maxglue.js", "bridgeclient.js",
                                        "liveclip.js", "replyport.js", "tooltable.js"}
    for name, data in dev.files.items():
        assert data == (M4L / "src" / name).read_bytes(), f"{name} differs from m4l/src"


def test_every_box_and_line_fits_its_class(device):
    _, dev = device
    patcher = dev.patcher["patcher"]
    boxes = boxes_of(patcher)
    for box in boxes.values():
        n_in, n_out, types = build.OBJECTS[object_class(box)]
        assert (box["numinlets"], box["numoutlets"], box.get("outlettype", [])) == (n_in, n_out, types), box["id"]
    for src, outlet, dst, inlet in links(patcher):
        assert outlet < boxes[src]["numoutlets"] and inlet < boxes[dst]["numinlets"]
    script = (M4L / "src" / "mb_duet.js").read_text()
    declared = tuple(int(re.search(rf"^{k} = (\d+);", script, re.M).group(1)) for k in ("inlets", "outlets"))
    assert declared == build.OBJECTS["js"][:2]


def test_notes_are_stamped_on_the_scheduler_and_answers_play_from_timepoints(device):
    _, dev = device
    patcher = dev.patcher["patcher"]
    boxes = boxes_of(patcher)
    wires = links(patcher)
    by_text = {}
    for box_id, box in boxes.items():
        by_text.setdefault(box.get("text"), []).append(box_id)
    (js,) = by_text[next(t for t in by_text if t and t.startswith("js "))]
    (midiin,), (midiout,), (parse,), (stamp,), (when,) = (by_text[t] for t in ("midiin", "midiout", "midiparse",
                                                                                 "t l b", "when"))
    (tick,), (note,), (iterate,), (fmt,) = (by_text[t] for t in ("prepend tick", "prepend note", "zl iter 2",
                                                                  "midiformat"))
    assert {(midiin, 0, midiout, 0), (midiin, 0, parse, 0), (parse, 0, stamp, 0), (stamp, 1, when, 0),
            (when, 1, tick, 0), (tick, 0, js, 0), (stamp, 0, note, 0), (note, 0, js, 0)} <= wires, \
        "the player's notes pass through, and each reaches the script after the time it came at"
    arm, load = by_text[f"route {' '.join(str(c) for c in range(build.CHANNELS + 1))}"]
    assert {(js, build.JS_OUT_ARM, arm, 0), (js, build.JS_OUT_LOAD, load, 0)} <= wires
    assert {(load, build.CHANNELS, iterate, 0), (iterate, 0, fmt, 0), (fmt, 0, midiout, 0)} <= wires
    timepoints, registers = by_text["timepoint"], by_text["zl reg"]
    assert len(timepoints) == len(registers) == build.CHANNELS
    for c, (point, held) in enumerate(zip(timepoints, registers)):
        (fired,) = by_text[f"prepend fired {c}"]
        assert {(arm, c, point, 0), (load, c, held, 1), (point, 0, held, 0), (held, 0, iterate, 0),
                (point, 0, fired, 0), (fired, 0, js, 0)} <= wires, f"channel {c}"


def test_controls_are_the_modes_parameters_and_on(device):
    mode, dev = device
    params = {b["varname"]: (b, valueof(b)) for b in boxes_of(dev.patcher["patcher"]).values() if valueof(b)}
    box, on = params.pop("on")
    assert box["maxclass"] == "live.toggle" and on["parameter_initial"] == [1]
    for p in mode.params:
        if p.kind == "str":
            box, value = params.pop(p.name)
            assert box["maxclass"] == "textedit" and box["text"] == (p.default or "")
        elif p.choices:
            box, value = params.pop(p.name)
            assert value["parameter_enum"] == [str(c) for c in p.choices]
            assert value["parameter_initial"] == [p.choices.index(p.default)]
        elif p.default is None and p.name == "scale_root":
            box, value = params.pop(p.name)
            assert value["parameter_enum"][:2] == ["off", build.FOLLOW_LIVE] and value["parameter_initial"] == [0]
        elif p.default is None:
            params.pop(f"{p.name}_on")
            box, value = params.pop(p.name)
            check_number(value, p)
        else:
            box, value = params.pop(p.name)
            check_number(value, p)
            assert value["parameter_initial"] == [p.default]
        assert value["parameter_longname"] == f"MB {mode.name.title()} {p.name.replace('_', ' ').title()}"
    assert not params, f"controls that are no parameter of {mode.name}: {set(params)}"
    table = build.tool_table()["play_along"]
    assert [c["id"] for c in table["modes"][mode.name]["controls"]] == [c.id for c in build.duet_controls(mode)]
    assert table["prefix"] == "/bridge/duet/" and table["channels"] == build.CHANNELS
