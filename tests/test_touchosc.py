"""The TouchOSC layout: its file parses, it is built from the tool table, and its Lua drives a bridge.

TouchOSC itself cannot run here, so `lua5.1` (TouchOSC's scripting is Lua 5.1) runs the layout's
scripts against a small stand-in for TouchOSC's control API (findByName, values, notify,
sendOSC, onReceiveOSC). The test presses buttons and moves faders, forwards what the scripts send
to a real bridge (fake models, a simulated Live set behind AbletonOSC) and feeds the replies
back, so every address the layout sends is checked against the server.
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

HARNESS = r"""
local spec = dofile(arg[1])
local byName, envs, buttons = {}, {}, {}

local function emit(...)
  io.write(table.concat({...}, '\t'), '\n')
  io.flush()
end

local function newControl(s)
  local values = {}
  for k, v in pairs(s.values) do values[k] = v end
  local c = {name = s.name}
  c.values = setmetatable({}, {__index = values, __newindex = function(_, k, v)
    values[k] = v
    emit('SET', s.name, k, tostring(v))
    if envs[s.name] and envs[s.name].onValueChanged then envs[s.name].onValueChanged(k) end
  end})
  function c:notify(key, value)
    if envs[self.name] and envs[self.name].onReceiveNotify then envs[self.name].onReceiveNotify(key, value) end
  end
  function c:findByName(name, recursive) return byName[name] end
  byName[s.name] = c
  buttons[s.name] = s.toggle
  return c
end

function sendOSC(path, ...)
  local parts = {'SEND', path}
  for _, v in ipairs({...}) do
    if type(v) == 'number' then parts[#parts + 1] = 'f:' .. string.format('%.9g', v)
    else parts[#parts + 1] = 's:' .. v end
  end
  emit(unpack(parts))
end

root = newControl(spec[1])
for i = 2, #spec do newControl(spec[i]) end
for _, s in ipairs(spec) do
  if s.script then
    local chunk = assert(loadstring(s.script, s.name))
    envs[s.name] = setmetatable({self = byName[s.name], root = root}, {__index = _G})
    setfenv(chunk, envs[s.name])
    chunk()
  end
end
for _, s in ipairs(spec) do
  if envs[s.name] and envs[s.name].init then envs[s.name].init() end
end
emit('OK')

local function split(line)
  local out = {}
  for field in string.gmatch(line, '[^\t]+') do out[#out + 1] = field end
  return out
end

for line in io.lines() do
  local f = split(line)
  if f[1] == 'press' then
    local c = byName[f[2]]
    if buttons[f[2]] then c.values.x = 1 - c.values.x else c.values.x = 1; c.values.x = 0 end
  elseif f[1] == 'set' then
    byName[f[2]].values[f[3]] = tonumber(f[4])
  elseif f[1] == 'osc' then
    local args = {}
    for i = 3, #f do
      local tag, value = string.match(f[i], '^(%a):(.*)$')
      args[#args + 1] = {tag = tag, value = tag == 's' and value or tonumber(value)}
    end
    envs[root.name].onReceiveOSC({f[2], args}, {1})
  end
  emit('OK')
end
"""


def build_module():
    spec = importlib.util.spec_from_file_location("build_layout", EXAMPLE / "build_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_layout() -> ET.Element:
    document = ET.fromstring(zlib.decompress((EXAMPLE / "magenta-bridge.tosc").read_bytes()))
    assert document.tag == "lexml" and document.get("version") == "3"
    (root,) = document.findall("node")
    return root


def properties(node: ET.Element) -> dict:
    out = {}
    for prop in node.find("properties"):
        value = prop.find("value")
        out[prop.findtext("key")] = value.text if len(value) == 0 else {child.tag: child.text for child in value}
    return out


def controls(root: ET.Element) -> list[dict]:
    """Every node, root first: type, name, script, values with their defaults, toggle or not."""
    out = []
    for node in root.iter("node"):
        props = properties(node)
        values = {v.findtext("key"): v.findtext("default") for v in node.find("values")}
        out.append({"type": node.get("type"), "name": props["name"], "script": props.get("script"),
                    "values": values, "toggle": props.get("buttonType") == "1"})
    return out


def test_layout_file_is_current_and_built_from_the_tool_table():
    built = zlib.decompress(build_module().build())
    assert zlib.decompress((EXAMPLE / "magenta-bridge.tosc").read_bytes()) == built, \
        "examples/touchosc/magenta-bridge.tosc is stale: run python examples/touchosc/build_layout.py"
    script = properties(load_layout())["script"]
    for tool in TOOLS.values():
        line = next(l for l in script.splitlines() if l.strip().startswith(f"{tool.name} = {{inputs = {tool.min_inputs},"))
        for param in tool.params:
            if param.name in ("variations", "temperature", "bars"):
                assert re.search(rf"\{{'{param.name}', {param.min:g}, {param.max:g}, ", line), (param.name, line)


def test_layout_parses_with_unique_names_and_every_tool_has_a_button():
    nodes = controls(load_layout())
    names = [n["name"] for n in nodes]
    assert len(names) == len(set(names))
    assert nodes[0]["type"] == "GROUP" and nodes[0]["script"]
    buttons = {n["name"]: n for n in nodes if n["type"] == "BUTTON"}
    for tool in TOOLS:
        assert f"root:notify('run', '{tool}')" in buttons[tool]["script"]
    for name in ("status", "bridge", "progress", "variations", "temperature", "bars", "track", "slot"):
        assert name in names


def lua_spec(nodes: list[dict], reply_port: int) -> str:
    def lua_string(text: str) -> str:
        assert "]==]" not in text
        return f"[==[{text}]==]"

    def default(value: str):
        return lua_string(value) if not re.fullmatch(r"-?[\d.]+", value) else value

    rows = []
    for n in nodes:
        script = n["script"]
        if n is nodes[0]:
            assert "local REPLY_PORT = 9000" in script
            script = script.replace("local REPLY_PORT = 9000", f"local REPLY_PORT = {reply_port}")
        values = ", ".join(f"{k} = {default(v)}" for k, v in n["values"].items() if k != "touch")
        rows.append(f"{{name = '{n['name']}', toggle = {str(n['toggle']).lower()}, values = {{{values}}}, "
                    f"script = {lua_string(script) if script else 'nil'}}}")
    return "return {\n" + ",\n".join(rows) + "\n}\n"


class Surface:
    """The layout running in lua5.1, wired to a bridge through one UDP socket, as TouchOSC is."""

    def __init__(self, tmp_path: Path, bridge_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.bridge_port = bridge_port
        (tmp_path / "harness.lua").write_text(HARNESS)
        (tmp_path / "layout.lua").write_text(lua_spec(controls(load_layout()), self.sock.getsockname()[1]))
        self.lua = subprocess.Popen([LUA, str(tmp_path / "harness.lua"), str(tmp_path / "layout.lua")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.values: dict[tuple[str, str], list[str]] = {}
        self.sent: list[tuple[str, list]] = []
        self.finals: dict[str, tuple[str, list]] = {}
        self._read()

    def _read(self) -> None:
        while (line := self.lua.stdout.readline().rstrip("\n")) != "OK":
            assert line, "lua stopped"
            kind, *fields = line.split("\t")
            if kind == "SET":
                self.values.setdefault((fields[0], fields[1]), []).append(fields[2])
            elif kind == "SEND":
                args = [float(a[2:]) if a.startswith("f:") else a[2:] for a in fields[1:]]
                self.sent.append((fields[0], args))
                self.sock.sendto(P.message(fields[0], *args), ("127.0.0.1", self.bridge_port))

    def do(self, *fields: object) -> None:
        self.lua.stdin.write("\t".join(str(f) for f in fields) + "\n")
        self.lua.stdin.flush()
        self._read()

    def value(self, name: str, key: str) -> str:
        return self.values[(name, key)][-1]

    def pump(self, rid: str, quiet: float = 0.2) -> tuple[str, list]:
        """Feed replies to the layout until `rid` has its final reply and the bridge went quiet."""
        self.sock.settimeout(5.0)
        while True:
            try:
                msg = OscMessage(self.sock.recv(65536))
            except socket.timeout:
                break
            fields = [msg.address]
            for value in msg.params:
                fields.append(("s:" if isinstance(value, str) else "i:" if isinstance(value, int) else "f:") + str(value))
            self.do("osc", *fields)
            if msg.params[:1] and msg.address in (P.DONE, P.ERROR):
                self.finals[msg.params[0]] = (msg.address, msg.params)
            if rid in self.finals:
                self.sock.settimeout(quiet)
        assert rid in self.finals, f"no final reply for {rid}"
        return self.finals[rid]

    def close(self) -> None:
        self.lua.stdin.close()
        self.lua.wait(5)
        self.sock.close()


@pytest.mark.skipif(LUA is None, reason="lua5.1 is not installed (apt-get install lua5.1): it runs the layout's scripts")
def test_the_layout_drives_the_bridge_and_live(tmp_path):
    with FakeAbleton(free_udp_port(), tempo=100.0) as live, \
            running_server(ableton=AbletonOSC(port=live.port, reply_port=live.reply_port, timeout=1.0)) as server:
        surface = Surface(tmp_path, server.port)
        try:
            assert surface.pump("tosc-register")[0] == P.DONE
            assert surface.value("bridge", "text") == "connected"

            surface.do("set", "variations", "x", 0.2)  # 1 + 0.2 * 15 = 4
            surface.do("set", "bars", "x", 0.0)
            assert surface.value("variations_value", "text") == "variations 4"
            surface.do("press", "generate")
            assert surface.sent[-1] == ("/bridge/generate", ["tosc1", "variations", 4.0, "bars", 1.0,
                                                             "temperature", 1.0])  # the slider starts at the default
            assert surface.pump("tosc1") == (P.DONE, ["tosc1", 4])
            assert surface.value("status", "text") == "done: 4 clip(s)" and surface.value("progress", "x") == "1"
            assert "busy, 1 waiting" in surface.values[("bridge", "text")]  # pushed when it was queued
            assert surface.value("bridge", "text") == "idle"

            surface.do("press", "continue")  # no input chosen: nothing is sent
            assert surface.sent[-1][0] == "/bridge/generate"
            assert "needs an input" in surface.value("status", "text")

            surface.do("press", "from_last")
            surface.do("press", "continue")
            assert surface.sent[-1][1][-2:] == ["input", "last"]
            assert surface.pump("tosc2") == (P.DONE, ["tosc2", 4])

            live.tracks[0].slots[2] = LiveClip(4.0, [(36, 0.0, 0.25, 100.0, False), (38, 1.0, 0.25, 90.0, False)])
            surface.do("press", "from_live")
            assert surface.value("from_last", "x") == "0"  # the input toggles exclude each other
            surface.do("press", "to_live")
            surface.do("set", "slot", "x", 2 / 15)
            surface.do("press", "groove")
            assert surface.sent[-1][1][-8:] == ["input", "live", "deliver", "live", "track", 0.0, "slot", 2.0]
            assert surface.pump("tosc3") == (P.DONE, ["tosc3", 1])
            assert "clip 1 -> Live track 0, slot 3" in surface.values[("status", "text")]
            beat = Clip((Note(36, 0.0, 0.25, 100), Note(38, 1.0, 0.25, 90)), 4.0, 100.0, TimeSignature())
            (want,) = expected("groove", [beat])
            written = live.tracks[0].slots[3]
            assert [(p, round(s, 4), v) for p, s, _, v, _ in written.notes] == \
                [(n.pitch, round(n.start, 4), n.velocity) for n in want.notes]

            surface.do("press", "to_live")  # off again
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
    addresses = {address for address, _ in surface.sent}
    assert addresses == {"/bridge/register", "/bridge/cancel", *(f"/bridge/{t}" for t in TOOLS)}
    for address, args in surface.sent:
        final, reply = surface.finals[args[0]]
        assert final == P.DONE or reply[1] not in REFUSED, (address, args, reply)
