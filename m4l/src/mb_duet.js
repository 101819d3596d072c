// Max entry point of MB Duet and MB Follow: `js mb_duet.js <mode>` (duet or follow).
//
// Runs in Max's `js` (ES5); the frozen .amxd carries this file and every module it requires.
// It only wires Max to duetcore.js:
//   inlet 0: live.thisdevice bang; "control <id> <value>" from live.* controls; "text <id> ..."
//            from textedit fields; "tick <ticks>" then "note <pitch> <velocity>" for each note
//            the player plays (stamped by `when` in the patch); "fired <channel>" from a
//            channel's timepoint
//   inlet 1: messages from udpreceive (through deferlow): bridge replies and reply-port probes
//   inlets 2, 3: unused (every device script has the js box m4l/build.py makes)
//   outlet 0: OSC to udpsend; 1: status line ("set <text>"); 2: "port <n>" to udpreceive;
//   3: "<channel> <ticks>" to a route, on to that channel's timepoint; 4: "<channel> <pitch>
//   <velocity>..." to a route, on to that channel's zl reg (channel = the number of channels:
//   straight to midiformat); 5: the reply-port probe, to a second udpsend

inlets = 4;
outlets = 6;
autowatch = 0;

var TOOL_TABLE = require("tooltable").TOOL_TABLE;
var LiveClip = require("liveclip").LiveClip;
var DuetDevice = require("duetcore").DuetDevice;
var Glue = require("maxglue").Glue;

var OUT_OSC = 0;
var OUT_ARM = 3;
var OUT_LOAD = 4;

var device = null;
var glue = new Glue({LiveAPI: LiveAPI, Task: Task, table: TOOL_TABLE, outlet: function (n, list) { outlet(n, list); }});

function bang() {
    // live.thisdevice: the Live API is ready only now, never at global scope.
    if (inlet !== 0 || device) {
        return;
    }
    var parts = glue.connect();
    if (!parts) {
        return;
    }
    device = new DuetDevice({
        mode: jsarguments[1], sid: "mb" + parts.id, table: TOOL_TABLE, client: parts.client, ports: parts.ports,
        live: new LiveClip(LiveAPI), timers: glue.timers, status: function (text) { glue.status(text); },
        send: function (address, args) { outlet(OUT_OSC, [address].concat(args)); },
        arm: function (channel, ticks) { outlet(OUT_ARM, channel, ticks); },
        load: function (channel, list) { outlet(OUT_LOAD, [channel].concat(list)); }
    });
    glue.ready(device, this.patcher);
    device.start();
}

function control(id, value) {
    glue.whenReady(function (d) { d.control(id, value); });
}

function text(id) {
    var words = Array.prototype.slice.call(arguments, 1);
    glue.whenReady(function (d) { d.text(id, words); });
}

function tick(ticks) {
    if (device) {
        device.stamp(ticks);
    }
}

function note(pitch, velocity) {
    if (device) {
        device.note(pitch, velocity);
    }
}

function fired(channel) {
    if (device) {
        device.fired(Number(channel));
    }
}

function anything() {
    var args = Array.prototype.slice.call(arguments);
    if (inlet === 1 && device && !device.ports.receive(messagename, args) && !device.receive(messagename, args)) {
        device.client.receive(messagename, args);
    }
}

function notifydeleted() {
    // Max calls this when the js object is freed (the device taken off the track; Cycling '74,
    // JavaScript in Max, and so used in public device scripts): the session ends, nothing sounds on.
    if (device) {
        device.values.on = 0;
        device.open();
    }
}
