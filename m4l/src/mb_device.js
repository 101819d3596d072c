// Max entry point of every magenta-bridge device: `js mb_device.js <tool> <kind>`.
//
// Runs in Max's `js` (ES5). The frozen .amxd carries this file and every module it requires
// (m4l/build.py embeds them). It only wires Max to the host-independent modules:
//   inlet 0: live.thisdevice bang, "control <id> <value>" from live.* controls (a button sends
//            "control run bang"), "text <id> text <words...>" from textedit fields
//   inlet 1: messages from udpreceive (through deferlow): bridge replies and reply-port probes
//   inlet 2, 3: notes and context dictionaries from live.miditool.in (MIDI Tools only)
//   outlet 0: OSC to udpsend; 1: status line ("set <text>"); 2: "port <n>" to udpreceive;
//   3: bang to live.miditool.in; 4: "dictionary <name>" to live.miditool.out;
//   5: the reply-port probe, to a second udpsend ("port <n>", then the probe message)
// m4l/build.py declares the same counts for the js box.

inlets = 4;
outlets = 6;
autowatch = 0;

var TOOL_TABLE = require("tooltable").TOOL_TABLE;
var BridgeClient = require("bridgeclient").BridgeClient;
var LiveClip = require("liveclip").LiveClip;
var ReplyPort = require("replyport").ReplyPort;
var Device = require("devicecore").Device;

var OUT_OSC = 0;
var OUT_STATUS = 1;
var OUT_PORT = 2;
var OUT_MIDITOOL_BANG = 3;
var OUT_MIDITOOL_NOTES = 4;
var OUT_PROBE = 5;

var device = null;
var pendingContext = null;
var earlyValues = [];
var notesOut = null;

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

function outputNotes(notes) {
    // live.miditool.out takes "dictionary <name>" within the apply pass.
    if (!notesOut) {
        notesOut = new Dict();
    }
    notesOut.parse(JSON.stringify({notes: notes}));
    outlet(OUT_MIDITOOL_NOTES, "dictionary", notesOut.name);
}

function bang() {
    // live.thisdevice: the Live API is ready only now, never at global scope.
    if (inlet !== 0 || device) {
        return;
    }
    var tool = jsarguments[1];
    var kind = jsarguments[2];
    var deviceId = Number(String(new LiveAPI("this_device").id).replace("id ", ""));
    if (!(deviceId > 0)) {
        status("Error: Live did not say which device this is; reload the device");
        return;
    }
    var client = new BridgeClient({
        send: function (address, args) { outlet(OUT_OSC, [address].concat(args)); },
        timers: timers,
        replyPort: 0,
        prefix: "mb" + deviceId,
        protocol: TOOL_TABLE.protocol
    });
    var ports = new ReplyPort({
        range: TOOL_TABLE.reply_ports, seed: deviceId, token: "mb" + deviceId, timers: timers,
        listen: function (port) { outlet(OUT_PORT, "port", port); },
        probe: function (port, address, args) {
            outlet(OUT_PROBE, "port", port);
            outlet(OUT_PROBE, [address].concat(args));
        },
        retry: function (port, next) { status("Reply port " + port + " did not open; trying " + next); }
    });
    device = new Device({
        tool: tool, kind: kind, table: TOOL_TABLE, client: client, ports: ports, live: new LiveClip(LiveAPI),
        status: status, defer: deferLow,
        miditool: {
            start: function () { outlet(OUT_MIDITOOL_BANG, "bang"); },
            output: outputNotes
        }
    });
    var patcher = this.patcher;
    device.setPicked = function (which, track, slot) {
        // Move the number boxes: their values are saved with the set, and their output comes
        // back here through "control".
        patcher.getnamed(which + "_track").message("float", track);
        patcher.getnamed(which + "_slot").message("float", slot);
    };
    for (var i = 0; i < earlyValues.length; i++) {
        earlyValues[i]();
    }
    earlyValues = [];
    var controls = device.controls;
    for (var c = 0; c < controls.length; c++) {
        if (controls[c].role === "text") {
            patcher.getnamed(controls[c].id).message("bang");  // its saved text comes back through "text"
        }
    }
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
    var args = Array.prototype.slice.call(arguments);
    if (inlet === 1 && device && !device.ports.receive(messagename, args)) {
        device.client.receive(messagename, args);
    }
}

function dictionary(name) {
    var value = JSON.parse(new Dict(name).stringify());
    if (inlet === 3) {
        pendingContext = value;  // the context outlet fires before the notes outlet
        return;
    }
    if (inlet !== 2) {
        return;
    }
    if (device && device.started && pendingContext) {
        device.midiToolInput(value, pendingContext);
    } else {
        // Not started yet: still answer within the pass, with the notes as they are.
        outputNotes(value.notes || []);
    }
    pendingContext = null;
}
