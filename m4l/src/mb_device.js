// Max entry point of every magenta-bridge device: `js mb_device.js <tool> <kind>`.
//
// Runs in Max's `js` (ES5) and in `v8`. It only wires Max to the host-independent modules:
//   inlet 0: live.thisdevice bang, "control <id> <value>", "text <id> <words...>"
//   inlet 1: bridge replies from udpreceive (through deferlow)
//   inlet 2, 3: notes and context dictionaries from live.miditool.in (MIDI Tools only)
//   outlet 0: OSC to udpsend; 1: status line ("set <text>"); 2: "port <n>" to udpreceive;
//   3: bang to live.miditool.in; 4: "dictionary <name>" to live.miditool.out
// m4l/build.py declares the same counts for the js box.

inlets = 4;
outlets = 5;
autowatch = 0;

var TOOL_TABLE = require("tooltable").TOOL_TABLE;
var BridgeClient = require("bridgeclient").BridgeClient;
var LiveClip = require("liveclip").LiveClip;
var Device = require("devicecore").Device;

var OUT_OSC = 0;
var OUT_STATUS = 1;
var OUT_PORT = 2;
var OUT_MIDITOOL_BANG = 3;
var OUT_MIDITOOL_NOTES = 4;
// Each device instance listens on its own reply port, picked from its Live object id so that
// several devices in one set do not fight over one port.
var REPLY_PORT_BASE = 40000;
var REPLY_PORT_RANGE = 20000;

var device = null;
var pendingContext = null;
var earlyValues = [];

var timers = {
    start: function (fn, ms) {
        var task = new Task(fn);
        task.schedule(ms);
        return task;
    },
    stop: function (task) {
        task.cancel();
    }
};

function deferLow(fn) {
    // Task callbacks run on Max's low-priority (main) thread, where the Live API may be written.
    var task = new Task(fn);
    task.schedule(0);
}

function status(text) {
    outlet(OUT_STATUS, "set", text);
}

function bang() {
    // live.thisdevice: the Live API is ready only now, never at global scope.
    if (inlet !== 0 || device) {
        return;
    }
    var tool = jsarguments[1];
    var kind = jsarguments[2];
    var deviceId = Number(new LiveAPI("this_device").id);
    var replyPort = REPLY_PORT_BASE + deviceId % REPLY_PORT_RANGE;
    outlet(OUT_PORT, "port", replyPort);
    var client = new BridgeClient({
        send: function (address, args) { outlet(OUT_OSC, [address].concat(args)); },
        timers: timers,
        replyPort: replyPort,
        prefix: "mb" + deviceId,
        protocol: TOOL_TABLE.protocol
    });
    device = new Device({
        tool: tool, kind: kind, table: TOOL_TABLE, client: client, live: new LiveClip(LiveAPI),
        status: status, defer: deferLow,
        miditool: {
            start: function () { outlet(OUT_MIDITOOL_BANG, "bang"); },
            output: function (notes) {
                var dict = new Dict();
                dict.parse(JSON.stringify({notes: notes}));
                outlet(OUT_MIDITOOL_NOTES, "dictionary", dict.name);
            }
        }
    });
    var patcher = this.patcher;
    device.setPicked = function (which, track, slot) {
        // Move the number boxes: their values are Live parameters, saved with the set, and
        // their output comes back here through "control".
        patcher.getnamed(which + "_track").message("float", track);
        patcher.getnamed(which + "_slot").message("float", slot);
    };
    for (var i = 0; i < earlyValues.length; i++) {
        earlyValues[i]();
    }
    earlyValues = [];
    device.start();
}

function control(id, value) {
    // Parameter values arrive when the set loads, possibly before live.thisdevice bangs.
    if (device) {
        device.control(id, value);
    } else {
        earlyValues.push(function () { device.control(id, value); });
    }
}

function text(id) {
    var words = Array.prototype.slice.call(arguments, 1);
    if (device) {
        device.text(id, words);
    } else {
        earlyValues.push(function () { device.text(id, words); });
    }
}

function anything() {
    if (inlet === 1 && device) {
        device.client.receive(messagename, Array.prototype.slice.call(arguments));
    }
}

function dictionary(name) {
    var value = JSON.parse(new Dict(name).stringify());
    if (inlet === 3) {
        pendingContext = value;  // the context outlet fires before the notes outlet
    } else if (inlet === 2 && device && pendingContext) {
        device.midiToolInput(value, pendingContext);
        pendingContext = null;
    }
}
