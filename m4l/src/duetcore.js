// MB Duet and MB Follow: the player's notes go to the bridge, the bridge's answers come out of
// the device on Live's transport, so a synth after it on the track plays them. Host-independent
// (ES5): mb_duet.js wires it to Max, m4l/tests to the simulator and a real bridge.
//
// Timing. Max's `js` runs on the low-priority thread and defers whatever reaches it from the
// scheduler (Cycling '74, "JavaScript and Threading"), so this script never stamps or plays a
// note itself; the patch does both on the scheduler thread:
//   - a played note is stamped with the transport's time: midiparse -> [t l b] -> `when` (the
//     current time in ticks, Cycling '74 `when` reference) reaches the script as "tick T" just
//     before the note itself ("note P V"), so the bridge hears the beat it was played on;
//   - an answer is played by timepoints: the notes that start or end at one tick (a group) are
//     loaded into a `zl reg`, and a `timepoint` is set to that tick; it bangs when the transport
//     reaches it (Cycling '74 `timepoint` reference: "int: set the time in ticks at which to
//     trigger a bang"; only while the transport runs) and the zl's notes go straight on to
//     midiformat and midiout. `channels` such pairs hold the next groups; one that fired says
//     so ("fired C") and takes the next.
// A note the player strikes during an answer cuts it here at once (the bridge does the same
// and says so with /bridge/duet/cut, which is then a no-op).
//
//   new DuetDevice({mode, sid, table, client, ports, live, timers, status, send(address, args),
//                   arm(channel, ticks), load(channel, list)})
//   load(channels, list) plays the pitch/velocity pairs of `list` at once.

var controlParams = require("devicecore").controlParams;
var scaleMode = require("devicecore").scaleMode;

var FAR = 2147483647;  // ticks: a timepoint set here is disarmed (the transport never gets there)
var RESEND_MS = 20;
var RESEND_ROUNDS = 3;
var SAME_TICK = 1e-6;

function DuetDevice(options) {
    var table = options.table.play_along;
    this.mode = options.mode;
    this.sid = options.sid;
    this.table = options.table;
    this.spec = table.modes[options.mode];
    this.controls = this.spec.controls;
    this.prefix = table.prefix;
    this.ticks = table.ticks_per_beat;
    this.client = options.client;
    this.ports = options.ports;
    this.live = options.live;
    this.timers = options.timers;
    this.status = options.status;
    this.sendRaw = options.send;
    this.arm = options.arm;
    this.load = options.load;
    this.values = {};
    this.started = false;
    this.ready = false;  // the reply port is open
    this.listening = false;  // the bridge has the session
    this.playing = false;  // Live's transport, as last seen
    this.again = false;  // settings changed while a start or stop was on its way
    this.tick = 0;  // the stamp of the player's latest note
    this.answers = {};  // number -> {chunks, count, cut (ticks or null), end (ticks), notes}
    this.groups = [];  // answer notes still to play, by tick: {tick, items: [[answer, pitch, velocity]], channel}
    this.channels = [];
    for (var c = 0; c < table.channels; c++) {
        this.channels.push(null);
    }
    this.sounding = {};  // "answer pitch" -> true
    this.observers = [];
    for (var i = 0; i < this.controls.length; i++) {
        if (this.controls[i].initial !== undefined) {
            this.values[this.controls[i].id] = this.controls[i].initial;
        }
    }
}

DuetDevice.prototype.start = function () {
    // live.thisdevice has banged: open the reply port, then the session.
    this.started = true;
    var self = this;
    this.status("Opening a reply port...");
    this.ports.choose(function (port, text) {
        if (!port) {
            self.status("Error: " + text);
            return;
        }
        self.ready = true;
        self.client.replyPort = port;
        var follow = function () { self.transport(false); };
        self.observers = [self.live.observe("is_playing", follow), self.live.observe("tempo", follow)];
        self.open();
    });
};

DuetDevice.prototype.control = function (id, value) {
    var number = Number(value);
    if (isNaN(number) || this.values[id] === number) {
        return;
    }
    this.values[id] = number;
    if (this.started) {
        this.open();  // On, Off, or the session again with the new settings
    }
};

DuetDevice.prototype.text = function (id, words) {
    var parts = words.slice();
    if (parts.length && parts[0] === "text") {
        parts.shift();
    }
    this.values[id] = parts.join(" ");
    if (this.started) {
        this.open();
    }
};

DuetDevice.prototype.startParams = function () {
    var song = this.live.songContext();
    var request = controlParams(this.controls, this.values, this.spec.params, this.table.follow_live);
    var params = request.params.concat(["mode", this.mode, "tempo", song.tempo,
                                        "meter", song.numerator + "/" + song.denominator]);
    if (request.followLive && song.scale) {
        var mode = scaleMode(this.table.modes, song.scale.intervals);
        if (mode) {
            params.push("scale_root", song.scale.root, "scale_mode", mode);
        }
    }
    return params;
};

DuetDevice.prototype.open = function () {
    // Start the session (or change it), or stop it when On is off.
    if (!this.ready) {
        return;
    }
    if (this.client.busy()) {
        this.again = true;  // once the request on its way is answered
        return;
    }
    var self = this;
    var done = function (text) {
        self.status(text);
        if (self.again) {
            self.again = false;
            self.open();
        }
    };
    var failed = function (code, text) {
        self.listening = false;
        done(code === "no_server" ? text : "Error: " + text + " (" + code + ")");
    };
    if (!this.values.on) {
        this.flush();
        if (!this.listening) {
            this.status("Off: your notes pass through");
            return;
        }
        this.listening = false;
        this.client.run("duet/stop", [], [], {progress: function () {}, error: failed,
            result: function () { done("Off: your notes pass through"); }}, this.sid);
        return;
    }
    var params;
    try {
        params = this.startParams();
    } catch (e) {
        this.status("Error: " + e.message);
        return;
    }
    this.status("Looking for the bridge...");
    this.client.run("duet/start", [], params, {progress: function () {}, error: failed, result: function () {
        self.listening = true;
        self.transport(true);
        done("Listening: " + self.spec.help.charAt(0).toLowerCase() + self.spec.help.slice(1));
    }}, this.sid);
};

DuetDevice.prototype.transport = function (opened) {
    // Live's transport started, stopped or changed tempo (an observer: read and send only), or
    // the session just opened (`opened`): the bridge learns where the transport is.
    if (!this.listening) {
        return;
    }
    var now = this.live.transport();
    if (!now.playing) {
        this.flush();
    } else if (!this.playing && !opened) {
        this.again = true;  // each press of Play opens the session again: a restarted bridge gets it back
    }
    this.playing = now.playing;
    this.send("clock", [now.beat, now.tempo, now.playing ? 1 : 0]);
    if (this.again && !this.client.busy()) {
        this.again = false;
        this.open();
    }
};

DuetDevice.prototype.send = function (name, args) {
    this.sendRaw(this.prefix + name, [this.sid].concat(args));
};

// The player ------------------------------------------------------------------------------

DuetDevice.prototype.stamp = function (ticks) {
    this.tick = Number(ticks);
};

DuetDevice.prototype.note = function (pitch, velocity) {
    if (!this.listening) {
        return;
    }
    this.send("note", [this.tick / this.ticks, Number(pitch), Number(velocity)]);
    if (Number(velocity) > 0 && this.mode === "duet") {
        for (var number in this.answers) {
            if (this.answers[number].end > this.tick) {
                this.cut(Number(number), this.tick);
            }
        }
    }
};

// The bridge ------------------------------------------------------------------------------

DuetDevice.prototype.receive = function (address, args) {
    // True when the message belongs to the Duet stream (handled here), false for the client.
    if (address.indexOf(this.prefix) !== 0) {
        return false;
    }
    if (!args || String(args[0]) !== this.sid) {
        return true;
    }
    var name = address.slice(this.prefix.length);
    if (name === "answer") {
        this.chunk(args.slice(1));
    } else if (name === "cut") {
        this.cut(Number(args[1]), Number(args[2]) * this.ticks);
    } else if (name === "notice") {
        // What the player should know (the melody model heard only the top note of each chord):
        // sent once a session, after the answer's chunks; kept on the status line with it.
        var noticed = this.answer(Number(args[1]));
        noticed.notice = String(args[2]);
        if (noticed.count !== null && this.complete(noticed)) {
            this.status(this.summary(Number(args[1]), noticed));
        }
    } else if (name === "error") {
        this.status("Error: " + args.slice(2).join(" ") + " (" + args[1] + ")");
    }
    return true;
};

DuetDevice.prototype.answer = function (number) {
    if (!this.answers[number]) {
        this.answers[number] = {chunks: {}, count: null, cut: null, end: FAR, notes: 0, notice: ""};
    }
    return this.answers[number];
};

DuetDevice.prototype.chunk = function (args) {
    // <answer> <chunk> <n_chunks> <start> <length> (<pitch> <offset> <duration> <velocity>)*
    var number = Number(args[0]);
    var chunk = Number(args[1]);
    var start = Number(args[3]);
    var answer = this.answer(number);
    if (answer.chunks[chunk]) {
        return;  // a resend that crossed the original: played once
    }
    if (answer.count === null) {
        answer.count = Number(args[2]);
        answer.end = (start + Number(args[4])) * this.ticks;
        this.watch(number, RESEND_ROUNDS);
    }
    answer.chunks[chunk] = true;
    for (var i = 5; i + 3 < args.length; i += 4) {
        var on = (start + Number(args[i + 1])) * this.ticks;
        if (answer.cut !== null && on >= answer.cut) {
            continue;
        }
        var off = on + Number(args[i + 2]) * this.ticks;
        this.add(on, [number, Number(args[i]), Number(args[i + 3])]);
        this.add(answer.cut === null ? off : Math.min(off, answer.cut), [number, Number(args[i]), 0]);
        answer.notes += 1;
    }
    this.schedule();
    if (this.complete(answer)) {
        this.status(this.summary(number, answer));
    }
};

DuetDevice.prototype.summary = function (number, answer) {
    return "Answer " + number + ": " + answer.notes + " notes" + (answer.notice ? " (" + answer.notice + ")" : "");
};

DuetDevice.prototype.complete = function (answer) {
    for (var c = 0; c < answer.count; c++) {
        if (!answer.chunks[c]) {
            return false;
        }
    }
    return true;
};

DuetDevice.prototype.watch = function (number, rounds) {
    // Chunks still missing RESEND_MS after the first came are asked for again.
    var self = this;
    this.timers.start(function () {
        var answer = self.answers[number];
        if (!answer || self.complete(answer) || rounds <= 0) {
            return;
        }
        for (var c = 0; c < answer.count; c++) {
            if (!answer.chunks[c]) {
                self.send("resend", [number, c]);
            }
        }
        self.watch(number, rounds - 1);
    }, RESEND_MS);
};

DuetDevice.prototype.cut = function (number, tick) {
    // Answer `number` stops at `tick`: what it would still start is dropped, what it holds ends.
    var answer = this.answer(number);
    if (answer.cut !== null && answer.cut <= tick) {
        return;
    }
    answer.cut = tick;
    for (var g = this.groups.length - 1; g >= 0; g--) {
        var group = this.groups[g];
        var kept = [];
        for (var i = 0; i < group.items.length; i++) {
            var item = group.items[i];
            if (item[0] !== number || group.tick < tick) {
                kept.push(item);
            }
        }
        if (kept.length !== group.items.length) {
            group.items = kept;
            group.dirty = true;
        }
    }
    var off = [];
    for (var key in this.sounding) {
        var parts = key.split(" ");
        if (Number(parts[0]) === number) {
            off.push(Number(parts[1]), 0);
            delete this.sounding[key];
        }
    }
    if (off.length) {
        this.load(this.channels.length, off);
    }
    this.schedule();
};

// Playing on the transport ---------------------------------------------------------------

DuetDevice.prototype.add = function (tick, item) {
    var at = 0;
    while (at < this.groups.length && this.groups[at].tick < tick - SAME_TICK) {
        at += 1;
    }
    var group = this.groups[at];
    if (group && Math.abs(group.tick - tick) <= SAME_TICK) {
        group.items.push(item);
        group.dirty = true;
        return;
    }
    this.groups.splice(at, 0, {tick: tick, items: [item], channel: -1, dirty: true});
};

function pairs(items) {
    // Note-offs first, so that a pitch ending and starting again at one tick sounds again.
    var out = [];
    for (var pass = 0; pass < 2; pass++) {
        for (var i = 0; i < items.length; i++) {
            if ((items[i][2] > 0) === (pass === 1)) {
                out.push(items[i][1], items[i][2]);
            }
        }
    }
    return out;
}

DuetDevice.prototype.schedule = function () {
    // The earliest groups are the ones loaded into channels and armed.
    var now = this.live.transport().beat * this.ticks;
    var g;
    for (g = this.groups.length - 1; g >= 0; g--) {
        var group = this.groups[g];
        // Emptied by a cut, or its time passed before it could be armed (or a beat ago, armed too late).
        if (!group.items.length || (group.tick <= now && (group.channel < 0 || group.tick < now - this.ticks))) {
            this.groups.splice(g, 1);
            this.release(group);
            if (group.items.length) {
                this.late(group);
            }
        }
    }
    for (var number in this.answers) {
        if (this.answers[number].end < now - this.ticks) {
            delete this.answers[number];  // over: no group holds its notes any more
        }
    }
    var wanted = this.groups.slice(0, this.channels.length);
    for (var c = 0; c < this.channels.length; c++) {
        if (this.channels[c] && wanted.indexOf(this.channels[c]) < 0) {
            this.release(this.channels[c]);
        }
    }
    for (g = 0; g < wanted.length; g++) {
        var next = wanted[g];
        if (next.channel < 0) {
            next.channel = this.channels.indexOf(null);
            this.channels[next.channel] = next;
        }
        if (next.dirty) {
            next.dirty = false;
            this.load(next.channel, pairs(next.items));
            this.arm(next.channel, next.tick);
        }
    }
};

DuetDevice.prototype.release = function (group) {
    if (group.channel >= 0) {
        this.arm(group.channel, FAR);
        this.channels[group.channel] = null;
        group.channel = -1;
        group.dirty = true;
    }
};

DuetDevice.prototype.late = function (group) {
    // Notes whose time passed before they could be armed are dropped; their note-offs still go.
    var off = [];
    for (var i = 0; i < group.items.length; i++) {
        var key = group.items[i][0] + " " + group.items[i][1];
        if (group.items[i][2] === 0 && this.sounding[key]) {
            off.push(group.items[i][1], 0);
            delete this.sounding[key];
        }
    }
    if (off.length) {
        this.load(this.channels.length, off);
    }
};

DuetDevice.prototype.fired = function (channel) {
    // Channel `channel` played its group (the patch did, on the transport): note what sounds now.
    var group = this.channels[channel];
    if (!group) {
        return;  // released meanwhile
    }
    this.channels[channel] = null;
    this.groups.splice(this.groups.indexOf(group), 1);
    var off = [];
    for (var i = 0; i < group.items.length; i++) {
        var item = group.items[i];
        var key = item[0] + " " + item[1];
        var answer = this.answers[item[0]];
        if (item[2] === 0) {
            delete this.sounding[key];
        } else if (answer && answer.cut !== null && group.tick >= answer.cut) {
            off.push(item[1], 0);  // it fired just as the player cut in: end it at once
        } else {
            this.sounding[key] = true;
        }
    }
    if (off.length) {
        this.load(this.channels.length, off);
    }
    this.schedule();
};

DuetDevice.prototype.flush = function () {
    // The transport stopped or the device went off: nothing more plays, nothing keeps sounding.
    for (var c = 0; c < this.channels.length; c++) {
        if (this.channels[c]) {
            this.release(this.channels[c]);
        }
    }
    var off = [];
    for (var key in this.sounding) {
        off.push(Number(key.split(" ")[1]), 0);
    }
    if (off.length) {
        this.load(this.channels.length, off);
    }
    this.sounding = {};
    this.groups = [];
    this.answers = {};
};

if (typeof exports !== "undefined") {
    exports.DuetDevice = DuetDevice;
    exports.FAR = FAR;
}
