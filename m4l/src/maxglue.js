// What the Max entry scripts (mb_device.js, mb_duet.js) share: Max's Task as timers, the device's
// bridge client and reply port wired to the outlets every entry script has (0: OSC to udpsend,
// 1: the status line, 2: "port <n>" to udpreceive, 5: the reply-port probe to a second udpsend),
// and control values that arrive before the device exists. ES5. Max's own objects (LiveAPI, Task,
// the js object's outlet function) are handed in rather than reached for from a module.

var BridgeClient = require("bridgeclient").BridgeClient;
var ReplyPort = require("replyport").ReplyPort;

var OUT_OSC = 0;
var OUT_STATUS = 1;
var OUT_PORT = 2;
var OUT_PROBE = 5;

function Glue(options) {
    // {LiveAPI, Task, table, outlet(n, list)}
    var TaskClass = options.Task;
    this.LiveAPI = options.LiveAPI;
    this.table = options.table;
    this.outlet = options.outlet;
    this.device = null;
    this.early = [];  // parameter values restored before live.thisdevice banged
    this.timers = {
        start: function (fn, ms) {
            var task = new TaskClass(fn);
            task.schedule(ms);
            return task;
        },
        stop: function (task) {
            task.cancel();
        }
    };
}

Glue.prototype.status = function (text) {
    this.outlet(OUT_STATUS, ["set", text]);
};

Glue.prototype.connect = function () {
    // live.thisdevice has banged: {id, client, ports} for this device, or null (the status line
    // says why) when Live does not say which device this is.
    var id = Number(String(new this.LiveAPI("this_device").id).replace("id ", ""));
    if (!(id > 0)) {
        this.status("Error: Live did not say which device this is; reload the device");
        return null;
    }
    var self = this;
    var client = new BridgeClient({
        send: function (address, args) { self.outlet(OUT_OSC, [address].concat(args)); },
        timers: this.timers, replyPort: 0, prefix: "mb" + id, protocol: this.table.protocol
    });
    var ports = new ReplyPort({
        range: this.table.reply_ports, seed: id, token: "mb" + id, timers: this.timers,
        listen: function (port) { self.outlet(OUT_PORT, ["port", port]); },
        probe: function (port, address, args) {
            self.outlet(OUT_PROBE, ["port", port]);
            self.outlet(OUT_PROBE, [address].concat(args));
        },
        retry: function (port, next) { self.status("Reply port " + port + " did not open; trying " + next); }
    });
    return {id: id, client: client, ports: ports};
};

Glue.prototype.whenReady = function (fn) {
    // Parameter values arrive when the set loads, possibly before live.thisdevice bangs.
    if (this.device) {
        fn(this.device);
    } else {
        this.early.push(fn);
    }
};

Glue.prototype.ready = function (device, patcher) {
    // The device exists: the values that came early, then each text field's saved text (a bang
    // makes it send its text, which comes back through "text").
    this.device = device;
    for (var i = 0; i < this.early.length; i++) {
        this.early[i](device);
    }
    this.early = [];
    for (var c = 0; c < device.controls.length; c++) {
        if (device.controls[c].role === "text") {
            patcher.getnamed(device.controls[c].id).message("bang");
        }
    }
};

if (typeof exports !== "undefined") {
    exports.Glue = Glue;
}
