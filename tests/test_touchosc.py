"""The TouchOSC layout: its file reads as TouchOSC reads it, it is built from the tool table, and
its Lua drives a bridge.

TouchOSC itself cannot run here. The layout is read the way TouchOSC reads a .tosc (typed
properties, defaults for those left out), and `lua5.1` runs its scripts, each in its own context
holding only what TouchOSC's Lua offers, against a stand-in for TouchOSC's control API
(findByName, values, notify, sendOSC with connections, onReceiveOSC). The test presses buttons
and moves faders, forwards what the scripts send on each connection (1: the bridge, 2: an
AbletonOSC, as a layout that also drives Live has), feeds the bridge's replies back, and checks
every address the layout sends against a real bridge (fake models, a Live set behind the
AbletonOSC stand-in).
"""
import importlib.util
import re
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
from fake_ableton import FakeAbleton, LiveClip
from fake_bridge import expected, free_udp_port, running_server
from pythonosc.osc_message import OscMessage

from bridge import protocol as P
from bridge.ableton import AbletonOSC
from bridge.clip import Clip, Note, TimeSignature
from bridge.tools import TOOLS

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "touchosc"
LUA = shutil.which("lua5.1")
REFUSED = ("unknown_address", "bad_request", "bad_param")
needs_lua = pytest.mark.skipif(LUA is None, reason="lua5.1 is not installed (apt-get install lua5.1): it runs the "
                                                    "layout's scripts")

# What a control is when its .tosc leaves a property out: the properties the TouchOSC editor
# writes for a new control (py2tosc's defaults.py, checked against layouts TouchOSC 1.5 saved).
DEFAULTS = {"background": True, "interactive": True, "orientation": 0, "outline": True, "visible": True}
TYPE_DEFAULTS = {"BUTTON": {"buttonType": 0}, "LABEL": {"interactive": False}, "GROUP": {"interactive": False}}
NORTH, EAST, SOUTH, WEST = range(4)  # orientation counts from 0 (py2tosc's enums.py)

HARNESS = r"""
local spec = dofile(arg[1])
local byName, envs = {}, {}
local CONNECTIONS = 2 -- enabled: 1 the bridge, 2 an AbletonOSC

local function emit(...)
  io.write(table.concat({...}, '\t'), '\n')
  io.flush()
end

local function callback(name, fn, ...)
  local f = envs[name] and rawget(envs[name], fn)
  if f then f(...) end
end

local function newControl(s)
  local values = {}
  for k, v in pairs(s.values) do values[k] = v end
  local c = {}
  for k, v in pairs(s.properties) do c[k] = v end
  c.values = setmetatable({}, {__index = values, __newindex = function(_, k, v)
    values[k] = v
    emit('SET', s.properties.name, k, tostring(v))
    callback(s.properties.name, 'onValueChanged', k)
  end})
  function c:notify(key, value) callback(self.name, 'onReceiveNotify', key, value) end
  function c:findByName(name, recursive) return byName[name] end
  byName[s.properties.name] = c
  return c
end

-- sendOSC(path [, ...] [, connections]): numbers go as floats, strings as strings; a trailing
-- table of booleans names the connections, without it the message goes on every enabled one
-- (Hexler's TouchOSC manual, Script > Global Functions).
local function sendOSC(path, ...)
  local args, connections = {...}, nil
  if type(args[#args]) == 'table' then connections = table.remove(args) end
  local on = {}
  for i = 1, CONNECTIONS do
    if connections == nil or connections[i] then on[#on + 1] = tostring(i) end
  end
  local parts = {'SEND', table.concat(on, ','), path}
  for _, v in ipairs(args) do
    if type(v) == 'number' then parts[#parts + 1] = 'f:' .. string.format('%.9g', v)
    elseif type(v) == 'string' then parts[#parts + 1] = 's:' .. v
    else error('sendOSC: cannot send a ' .. type(v), 2) end
  end
  emit(unpack(parts))
end

-- A script's context: Lua's base functions TouchOSC keeps, its libraries with TouchOSC's
-- additions (Hexler's manual, Script > Lua Functions), and TouchOSC's own globals. Nothing else:
-- no assert, loadstring, setmetatable, require, io, coroutine or debug.
local function touchosc(control)
  local env = {}
  for _, name in ipairs({'error', 'ipairs', 'next', 'pairs', 'print', 'select', 'tonumber', 'tostring', 'unpack',
                         'type'}) do
    env[name] = _G[name]
  end
  env.print = function(...) io.stderr:write(table.concat({...}, '\t'), '\n') end
  env.string, env.table, env.math = {}, {}, {}
  for k, v in pairs(string) do env.string[k] = v end
  for k, v in pairs(table) do env.table[k] = v end
  for k, v in pairs(math) do env.math[k] = v end
  env.table.pack = function(...) return {...} end
  env.table.unpack = unpack
  env.math.clamp = function(x, low, high) return math.min(math.max(x, low), high) end
  env.os = {clock = os.clock, date = os.date, difftime = os.difftime, time = os.time}
  env.sendOSC = sendOSC
  env.getMillis = function() return os.clock() * 1000 end
  env.self, env.root = control, byName[spec[1].properties.name]
  return setmetatable(env, {__index = function(_, name)
    error("TouchOSC's Lua has no global '" .. tostring(name) .. "'", 2)
  end})
end

for _, s in ipairs(spec) do newControl(s) end
for _, s in ipairs(spec) do
  if s.script then
    local name = s.properties.name
    local chunk = assert(loadstring(s.script, name))
    envs[name] = touchosc(byName[name])
    setfenv(chunk, envs[name])
    chunk()
  end
end
for _, s in ipairs(spec) do callback(s.properties.name, 'init') end
emit('OK')

local function split(line)
  local out = {}
  for field in string.gmatch(line, '[^\t]+') do out[#out + 1] = field end
  return out
end

for line in io.lines() do
  local f = split(line)
  if f[1] == 'press' then -- a momentary button goes 1 then 0; a toggle flips
    local c = byName[f[2]]
    if c.buttonType ~= 0 then c.values.x = 1 - c.values.x else c.values.x = 1; c.values.x = 0 end
  elseif f[1] == 'set' then
    byName[f[2]].values[f[3]] = tonumber(f[4])
  elseif f[1] == 'osc' then -- received on connection f[2]
    local args = {}
    for i = 4, #f do
      local tag, value = string.match(f[i], '^(%a):(.*)$')
      args[#args + 1] = {tag = tag, value = tag == 's' and value or tonumber(value)}
    end
    local connections = {}
    for i = 1, 10 do connections[i] = i == tonumber(f[2]) end
    callback(spec[1].properties.name, 'onReceiveOSC', {f[3], args}, connections)
  end
  emit('OK')
end
"""


def build_module():
    spec = importlib.util.spec_from_file_location("build_layout", EXAMPLE / "build_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def typed(prop: ET.Element):
    """A property's value as TouchOSC types it: s, b (0/1), i, f, r (frame), c (colour)."""
    kind, value = prop.get("type"), prop.find("value")
    if kind in ("r", "c"):
        return {child.tag: float(child.text) for child in value}
    text = value.text or ""
    return {"s": lambda: text, "b": lambda: text == "1", "i": lambda: int(text), "f": lambda: float(text)}[kind]()


def default_value(key: str, text: str):
    """A value's default: `touch` is a boolean spelled true/false, `text` a string, the rest numbers."""
    return text == "true" if key == "touch" else text if key == "text" else float(text)


def read_layout() -> list[dict]:
    """Every control, root first: type, properties (defaults filled in), values and script."""
    document = ET.fromstring(zlib.decompress((EXAMPLE / "magenta-bridge.tosc").read_bytes()))
    assert document.tag == "lexml" and document.get("version") == "3"
    (root,) = document.findall("node")
    controls = []
    for node in root.iter("node"):
        properties = {**DEFAULTS, **TYPE_DEFAULTS.get(node.get("type"), {})}
        properties.update({prop.findtext("key"): typed(prop) for prop in node.find("properties")})
        values = {v.findtext("key"): default_value(v.findtext("key"), v.findtext("default")) for v in node.find("values")}
        controls.append({"type": node.get("type"), "name": properties["name"], "script": properties.pop("script", None),
                         "properties": properties, "values": values})
    return controls


def test_layout_file_is_current_and_built_from_the_tool_table():
    built = zlib.decompress(build_module().build())
    assert zlib.decompress((EXAMPLE / "magenta-bridge.tosc").read_bytes()) == built, \
        "examples/touchosc/magenta-bridge.tosc is stale: run python examples/touchosc/build_layout.py"
    script = read_layout()[0]["script"]
    for tool in TOOLS.values():
        line = next(l for l in script.splitlines() if l.strip().startswith(f"{tool.name} = {{inputs = {tool.min_inputs},"))
        for param in tool.params:
            if param.name in ("variations", "temperature", "bars"):
                assert re.search(rf"\{{'{param.name}', {param.min:g}, {param.max:g}, ", line), (param.name, line)


def test_layout_parses_with_unique_names_and_every_tool_has_a_button():
    controls = read_layout()
    names = [c["name"] for c in controls]
    assert len(names) == len(set(names))
    assert controls[0]["type"] == "GROUP" and controls[0]["script"]
    buttons = {c["name"]: c for c in controls if c["type"] == "BUTTON"}
    for tool in TOOLS:
        assert f"root:notify('run', '{tool}')" in buttons[tool]["script"]
    for name in ("status", "bridge", "progress", "variations", "temperature", "bars", "track", "slot"):
        assert name in names
    for control in controls:  # on the 1024 x 768 page, however many tools there are
        frame = control["properties"]["frame"]
        assert frame["x"] >= 0 and frame["y"] >= 0 and frame["x"] + frame["w"] <= 1024 and frame["y"] + frame["h"] <= 768


def test_faders_fill_along_their_long_side():
    """TouchOSC fills a fader toward its orientation, north when none is written: a wide fader
    needs east (or west), or it fills across its 20 pixels."""
    faders = [c for c in read_layout() if c["type"] == "FADER"]
    assert "progress" in [f["name"] for f in faders]
    for fader in faders:
        frame = fader["properties"]["frame"]
        wide = frame["w"] > frame["h"]
        assert (fader["properties"]["orientation"] in (EAST, WEST)) == wide, fader["name"]


def test_every_button_shows_a_caption():
    """TouchOSC buttons draw no text: each needs a label over it, not interactive so the press
    reaches the button."""
    controls = read_layout()
    labels = [c for c in controls if c["type"] == "LABEL"]
    for button in (c for c in controls if c["type"] == "BUTTON"):
        frame = button["properties"]["frame"]
        over = [label for label in labels if label["properties"]["frame"] == frame]
        assert over and over[0]["values"]["text"], f"button {button['name']} has no caption"
        assert not over[0]["properties"]["interactive"] and controls.index(over[0]) > controls.index(button)


def test_the_root_script_uses_table_unpack_as_hexlers_manual_does():
    """TouchOSC's manual spells it table.unpack (Script > Lua Functions, and its examples)."""
    script = read_layout()[0]["script"]
    assert "table.unpack(" in script and not re.search(r"(?<![\w.])unpack\(", script)


def lua_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {lua_value(v)}" for k, v in value.items()) + "}"
    assert "]==]" not in value
    return f"[==[{value}]==]"


def lua_spec(controls: list[dict], reply_port: int) -> str:
    rows = []
    for c in controls:
        script = c["script"]
        if c is controls[0]:
            assert "local REPLY_PORT = 9000" in script
            script = script.replace("local REPLY_PORT = 9000", f"local REPLY_PORT = {reply_port}")
        values = {k: v for k, v in c["values"].items() if k != "touch"}
        rows.append(f"{{properties = {lua_value(c['properties'])}, values = {lua_value(values)}, "
                    f"script = {lua_value(script) if script else 'nil'}}}")
    return "return {\n" + ",\n".join(rows) + "\n}\n"


def bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class Surface:
    """The layout running in lua5.1, wired as TouchOSC is: connection 1 sends to the bridge from
    some port of its own and receives on REPLY_PORT; connection 2 sends to AbletonOSC."""

    def __init__(self, tmp_path: Path, bridge_port: int, ableton_port: int) -> None:
        self.receive, self.send = bound(), bound()
        self.port = self.receive.getsockname()[1]
        self.targets = {"1": bridge_port, "2": ableton_port}
        (tmp_path / "harness.lua").write_text(HARNESS)
        (tmp_path / "layout.lua").write_text(lua_spec(read_layout(), self.port))
        self.lua = subprocess.Popen([LUA, str(tmp_path / "harness.lua"), str(tmp_path / "layout.lua")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.values: dict[tuple[str, str], list[str]] = {}
        self.sent: list[tuple[str, list, str]] = []  # address, args, connections
        self.finals: dict[str, tuple[str, list]] = {}
        self._read()

    def reopen(self) -> None:
        """Send from a new port, as TouchOSC may after a network change: replies must not depend on it."""
        self.send.close()
        self.send = bound()

    def _read(self) -> None:
        while (line := self.lua.stdout.readline().rstrip("\n")) != "OK":
            assert line, "lua stopped"
            kind, *fields = line.split("\t")
            if kind == "SET":
                self.values.setdefault((fields[0], fields[1]), []).append(fields[2])
            elif kind == "SEND":
                connections, address = fields[0], fields[1]
                args = [float(a[2:]) if a.startswith("f:") else a[2:] for a in fields[2:]]
                self.sent.append((address, args, connections))
                for connection in filter(None, connections.split(",")):
                    self.send.sendto(P.message(address, *args), ("127.0.0.1", self.targets[connection]))

    def do(self, *fields: object) -> None:
        self.lua.stdin.write("\t".join(str(f) for f in fields) + "\n")
        self.lua.stdin.flush()
        self._read()

    def value(self, name: str, key: str) -> str:
        return self.values[(name, key)][-1]

    def pump(self, rid: str, quiet: float = 0.2) -> tuple[str, list]:
        """Feed replies to the layout until `rid` has its final reply and the bridge went quiet."""
        self.receive.settimeout(5.0)
        while True:
            try:
                msg = OscMessage(self.receive.recv(65536))
            except socket.timeout:
                break
            fields = [msg.address]
            for value in msg.params:
                fields.append(("s:" if isinstance(value, str) else "i:" if isinstance(value, int) else "f:") + str(value))
            self.do("osc", 1, *fields)
            if msg.params[:1] and msg.address in (P.DONE, P.ERROR):
                self.finals[msg.params[0]] = (msg.address, msg.params)
            if rid in self.finals:
                self.receive.settimeout(quiet)
        assert rid in self.finals, f"no final reply for {rid}"
        return self.finals[rid]

    def close(self) -> None:
        self.lua.stdin.close()
        self.lua.wait(5)
        self.receive.close()
        self.send.close()


@needs_lua
def test_the_stand_in_offers_only_touchoscs_lua(tmp_path):
    """A script reaching for Lua 5.1 beyond TouchOSC's set fails here as it would in TouchOSC."""
    (tmp_path / "harness.lua").write_text(HARNESS)
    results = {}
    for call in ("table.unpack({1})", "math.clamp(2, 0, 1)", "unpack({1})", "assert(true)", "loadstring('x = 1')",
                 "setmetatable({}, {})", "io.write('x')"):
        root = "{properties = {name = 'root'}, values = {}, script = " + lua_value(f"function init() {call} end") + "}"
        (tmp_path / "layout.lua").write_text("return {" + root + "}")
        done = subprocess.run([LUA, str(tmp_path / "harness.lua"), str(tmp_path / "layout.lua")], input="",
                              capture_output=True, text=True, timeout=10)
        results[call] = done.returncode == 0
    assert results == {"table.unpack({1})": True, "math.clamp(2, 0, 1)": True, "unpack({1})": True,
                       "assert(true)": False, "loadstring('x = 1')": False, "setmetatable({}, {})": False,
                       "io.write('x')": False}


@needs_lua
def test_the_bars_fader_steps_through_the_values_generate_takes(tmp_path):
    """Generate takes bars 1, 2, 4 or 8 (its Param's choices): the fader steps through those,
    so no position (the layout's starting 0.5 included) sends a value the bridge refuses."""
    with running_server() as server:
        surface = Surface(tmp_path, server.port, free_udp_port())
        try:
            assert surface.pump("tosc-register")[0] == P.DONE
            for x, bars in ((0.0, 1), (0.3, 2), (0.5, 4), (0.9, 8)):
                surface.do("set", "bars", "x", x)
                assert surface.value("bars_value", "text") == f"bars {bars}"
                surface.do("press", "generate")
                args = surface.sent[-1][1]
                assert args[args.index("bars") + 1] == bars
                assert surface.pump(args[0])[0] == P.DONE
        finally:
            surface.close()


@needs_lua
def test_the_layout_drives_the_bridge_and_live(tmp_path):
    with FakeAbleton(free_udp_port(), tempo=100.0) as live, \
            running_server(ableton=AbletonOSC(port=live.port, reply_port=live.reply_port, timeout=1.0)) as server:
        surface = Surface(tmp_path, server.port, live.port)
        try:
            assert surface.pump("tosc-register")[0] == P.DONE
            assert surface.value("bridge", "text") == "connected"

            surface.do("set", "variations", "x", 0.2)  # 1 + 0.2 * 15 = 4
            surface.do("set", "bars", "x", 0.0)
            assert surface.value("variations_value", "text") == "variations 4"
            surface.do("press", "generate")
            assert surface.sent[-1][:2] == ("/bridge/generate", ["tosc1", "variations", 4.0, "bars", 1.0, "temperature",
                                                                  1.0, "reply_port", float(surface.port)])
            assert surface.pump("tosc1") == (P.DONE, ["tosc1", 4])
            assert surface.value("status", "text") == "done: 4 clip(s)" and surface.value("progress", "x") == "1"
            assert "busy, 1 waiting" in surface.values[("bridge", "text")]  # pushed when it was queued
            assert surface.value("bridge", "text") == "idle"

            surface.do("press", "continue")  # no input chosen: nothing is sent
            assert surface.sent[-1][0] == "/bridge/generate"
            assert "needs an input" in surface.value("status", "text")

            surface.do("press", "from_last")
            surface.do("press", "continue")
            assert surface.sent[-1][1][-4:-2] == ["input", "last"]
            assert surface.pump("tosc2") == (P.DONE, ["tosc2", 4])

            live.tracks[0].slots[2] = LiveClip(4.0, [(36, 0.0, 0.25, 100.0, False), (38, 1.0, 0.25, 90.0, False)])
            surface.do("press", "from_live")
            assert surface.value("from_last", "x") == "0"  # the input toggles exclude each other
            surface.do("press", "to_live")
            surface.do("set", "slot", "x", 2 / 15)
            surface.do("press", "groove")
            assert surface.sent[-1][1][-10:-2] == ["input", "live", "deliver", "live", "track", 0.0, "slot", 2.0]
            assert surface.pump("tosc3") == (P.DONE, ["tosc3", 1])
            assert "clip 1 -> Live track 0, slot 3" in surface.values[("status", "text")]
            beat = Clip((Note(36, 0.0, 0.25, 100), Note(38, 1.0, 0.25, 90)), 4.0, 100.0, TimeSignature())
            (want,) = expected("groove", [beat])
            written = live.tracks[0].slots[3]
            assert [(p, round(s, 4), v) for p, s, _, v, _ in written.notes] == \
                [(n.pitch, round(n.start, 4), n.velocity) for n in want.notes]

            surface.reopen()  # TouchOSC sends from another port now: the replies still come back
            surface.do("press", "to_live")  # off again
            surface.do("press", "from_live")  # off again
            surface.do("press", "generate")
            assert surface.pump(surface.sent[-1][1][0])[0] == P.DONE
            surface.do("press", "from_last")
            for tool in TOOLS:
                surface.do("press", tool)
                surface.pump(surface.sent[-1][1][0])
            surface.do("press", "generate")
            surface.do("press", "cancel")
            surface.pump(surface.sent[-1][1][0])
            surface.do("press", "connect")
            surface.pump("tosc-register")
        finally:
            surface.close()
    addresses = {address for address, _, _ in surface.sent}
    assert addresses == {"/bridge/register", "/bridge/cancel", *(f"/bridge/{t}" for t in TOOLS)}
    for address, args, connections in surface.sent:
        assert connections == "1" and args[-2:] == ["reply_port", float(surface.port)], (address, args, connections)
        final, reply = surface.finals[args[0]]
        assert final == P.DONE or reply[1] not in REFUSED, (address, args, reply)
    assert not [address for address, *_ in live.received if address.startswith("/bridge/")]
