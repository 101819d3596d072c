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
var LiveClip = require("liveclip").LiveClip;
var Device = require("devicecore").Device;
var Glue = require("maxglue").Glue;

var OUT_MIDITOOL_BANG = 3;
var OUT_MIDITOOL_NOTES = 4;

var device = null;
var pendingContext = null;
var notesOut = null;
var glue = new Glue({LiveAPI: LiveAPI, Task: Task, table: TOOL_TABLE, outlet: function (n, list) { outlet(n, list); }});

function deferLow(fn) {
    // Task callbacks run on Max's low-priority (main) thread, where the Live API may be written.
    var task = new Task(fn);
    task.schedule(0);
}

function status(text) {
    glue.status(text);
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
    var parts = glue.connect();
    if (!parts) {
        return;
    }
    device = new Device({
        tool: jsarguments[1], kind: jsarguments[2], table: TOOL_TABLE, client: parts.client, ports: parts.ports,
        live: new LiveClip(LiveAPI), status: status, defer: deferLow,
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
    glue.ready(device, patcher);
    device.start();
}

function control(id, value) {
    glue.whenReady(function (d) { d.control(id, value); });
}

function text(id) {
    var words = Array.prototype.slice.call(arguments, 1);
    glue.whenReady(function (d) { d.text(id, words); });
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
