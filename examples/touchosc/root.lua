-- magenta-bridge for TouchOSC Mk2: the layout's root script (build_layout.py puts it in the .tosc).
--
-- TouchOSC buttons send fixed messages, but the bridge wants `/bridge/<tool> <id> key value ...`
-- with a new request id every time. So the buttons only notify this script, which reads the
-- faders and toggles, builds the request and sends it with sendOSC, on the bridge's connection
-- only: without a connections table sendOSC sends on every enabled connection (Hexler's manual,
-- Script > Global Functions), one to AbletonOSC included. Each request names REPLY_PORT, so the
-- replies reach TouchOSC whatever port it sends from; `/bridge/register` adds the bridge's
-- busy/idle pushes. Uses only what TouchOSC's Lua offers (manual, Script > Lua Functions).
local BRIDGE = 1 -- the OSC connection (1-10) to the bridge
local REPLY_PORT = 9000 -- that connection's receive port

--@TOOLS@

--@FADERS@

local REGISTER_ID = 'tosc-register'
local counter = 0
local current = nil -- id of the request in flight

local function control(name)
  return root:findByName(name, true)
end

local function say(text)
  control('status').values.text = text
end

local function arg(args, i)
  return args[i] and args[i].value
end

local function nearest(choices, value)
  local best = choices[1]
  for _, choice in ipairs(choices) do
    if math.abs(choice - value) < math.abs(best - value) then
      best = choice
    end
  end
  return best
end

-- A fader's value; one over a parameter that takes only some values (bars: 1, 2, 4, 8) steps
-- through those, evenly spaced along the fader.
local function faderValue(name)
  local range = FADERS[name]
  local x = control(name).values.x
  if range[4] then
    return range[4][math.floor(x * (#range[4] - 1) + 0.5) + 1]
  end
  local value = range[1] + x * (range[2] - range[1])
  if range[3] then
    value = math.floor(value + 0.5)
  end
  return value
end

local function showFader(name)
  local format = FADERS[name][3] and '%s %d' or '%s %.2f'
  control(name .. '_value').values.text = string.format(format, name, faderValue(name))
end

local function nextId(prefix)
  counter = counter + 1
  return prefix .. counter
end

local function pair(args, key, value)
  args[#args + 1] = key
  args[#args + 1] = value
end

local function toBridge(path, args)
  pair(args, 'reply_port', REPLY_PORT)
  local connections = {}
  for i = 1, 10 do
    connections[i] = i == BRIDGE
  end
  args[#args + 1] = connections
  sendOSC(path, table.unpack(args))
end

local function run(tool)
  local spec = TOOLS[tool]
  local args = {}
  for _, p in ipairs(spec.params) do -- each tool's own range, though the fader spans all tools'
    local value = math.max(p[2], math.min(p[3], faderValue(p[1])))
    pair(args, p[1], p[5] and nearest(p[5], value) or value)
  end
  local fromLive = control('from_live').values.x == 1
  local fromLast = control('from_last').values.x == 1
  local toLive = control('to_live').values.x == 1
  if fromLive then
    pair(args, 'input', 'live')
  elseif fromLast then
    pair(args, 'input', 'last')
  elseif spec.inputs > 0 then
    say(tool .. ' needs an input: turn on "last result" or "Live clip"')
    return
  end
  if toLive then
    pair(args, 'deliver', 'live')
  end
  if fromLive or toLive then
    pair(args, 'track', faderValue('track'))
    pair(args, 'slot', faderValue('slot'))
  end
  current = nextId('tosc')
  table.insert(args, 1, current)
  control('progress').values.x = 0
  say(tool .. ': sent')
  toBridge('/bridge/' .. tool, args)
end

local function register()
  control('bridge').values.text = 'connecting...'
  toBridge('/bridge/register', {REGISTER_ID, REPLY_PORT})
end

function init()
  for name in pairs(FADERS) do
    showFader(name)
  end
  register()
end

function onReceiveNotify(key, value)
  if key == 'run' then
    run(value)
  elseif key == 'fader' then
    showFader(value)
  elseif key == 'input' then -- the two input toggles exclude each other
    control(value == 'live' and 'from_last' or 'from_live').values.x = 0
  elseif key == 'cancel' and current then
    toBridge('/bridge/cancel', {nextId('tosc-cancel'), current})
  elseif key == 'connect' then
    register()
  end
end

function onReceiveOSC(message, connections)
  if not connections[BRIDGE] then
    return
  end
  local path, args = message[1], message[2]
  local id = arg(args, 1)
  if path == '/bridge/status' and id == '' then
    control('bridge').values.text = arg(args, 2) == 1 and string.format('busy, %d waiting', arg(args, 3)) or 'idle'
  elseif id == REGISTER_ID then
    control('bridge').values.text = path == '/bridge/done' and 'connected' or 'not connected'
  elseif id == current then
    if path == '/bridge/progress' then
      control('progress').values.x = arg(args, 2)
      say(string.format('%d%% %s', math.floor(arg(args, 2) * 100 + 0.5), arg(args, 3)))
    elseif path == '/bridge/delivered' then
      say(string.format('clip %d -> Live track %d, slot %d', arg(args, 2) + 1, arg(args, 3), arg(args, 4)))
    elseif path == '/bridge/done' then
      control('progress').values.x = 1
      say(string.format('done: %d clip(s)', arg(args, 2)))
      current = nil
    elseif path == '/bridge/error' then
      control('progress').values.x = 0
      say('error ' .. arg(args, 2) .. ': ' .. arg(args, 3))
      current = nil
    end
  end
end
