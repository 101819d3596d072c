// What a device does when its controls move and its Run button is pressed: read the input
// clips, ask the bridge, write the results. Host-independent (ES5): mb_device.js wires it to
// Max, m4l/tests wire it to the Live simulator and a real bridge server.
//
//   new Device({tool, kind, table, client, ports, live, status, defer, miditool})
//   kind: "effect" (MIDI effect: clips go to slots), "generator" / "transformation" (Live 12
//   MIDI Tools: notes go back through live.miditool.out)
//   ports: a ReplyPort (replyport.js) that opens and proves the reply port before the first ping
//   status(text): the status line; defer(fn): run fn later on the low-priority thread, where
//   the Live API may be written; miditool: {start(), output(notes)} for MIDI Tools: start()
//   bangs live.miditool.in, output(notes) answers the apply pass through live.miditool.out.

function Device(options) {
    this.tool = options.tool;
    this.kind = options.kind;
    this.table = options.table;
    this.spec = options.table.tools[options.tool];
    this.controls = this.spec.controls[options.kind];
    this.client = options.client;
    this.ports = options.ports;
    this.live = options.live;
    this.status = options.status;
    this.defer = options.defer;
    this.miditool = options.miditool || null;
    this.values = {};
    this.started = false;  // live.thisdevice has banged
    this.ready = false;  // the reply port is open: requests may go out
    this.portError = "";
    // MIDI Tools: the last result (for which input and settings), what was last asked, and
    // whether Run asked for a fresh request.
    this.pass = {cache: null, sentKey: null, forced: false};
    for (var i = 0; i < this.controls.length; i++) {
        var c = this.controls[i];
        if (c.initial !== undefined) {
            this.values[c.id] = c.initial;
        }
    }
}

Device.prototype.controlById = function (id) {
    for (var i = 0; i < this.controls.length; i++) {
        if (this.controls[i].id === id) {
            return this.controls[i];
        }
    }
    return null;
};

Device.prototype.paramSpec = function (name) {
    for (var i = 0; i < this.spec.params.length; i++) {
        if (this.spec.params[i].name === name) {
            return this.spec.params[i];
        }
    }
    return null;
};

Device.prototype.start = function () {
    // live.thisdevice has banged: the Live API is usable now. Open the reply port, then check
    // that the bridge is up.
    this.started = true;
    var self = this;
    this.status("Opening a reply port...");
    this.ports.choose(function (port, text) {
        if (!port) {
            self.portError = text;
            self.fail(text);
            return;
        }
        self.ready = true;
        self.client.replyPort = port;
        self.status("Looking for the bridge...");
        self.client.ping({
            progress: function () {},
            result: function () { self.status("Ready: bridge running (replies on port " + port + ")"); },
            error: function (code, text) { self.status(text); }
        });
    });
};

function isPress(value) {
    // live.text in button mode sends `bang` (Cycling '74 live.text reference); a toggle-mode
    // live.text or an automation sends 1.
    return value === "bang" || Number(value) > 0;
}

Device.prototype.control = function (id, value) {
    var control = this.controlById(id);
    if (!control) {
        return;
    }
    if (control.role === "run" || control.role === "pick") {
        // A value restored while the set loads (before start) must not press a button.
        if (this.started && isPress(value)) {
            if (control.role === "run") {
                this.run();
            } else {
                this.pick(id.slice("pick_".length));
            }
        }
        return;
    }
    var number = Number(value);
    if (isNaN(number)) {
        return;
    }
    this.changed(id, number);
};

Device.prototype.changed = function (id, value) {
    var before = this.values[id];
    this.values[id] = value;
    if (this.started && this.kind !== "effect" && before !== value) {
        // A MIDI Tool follows its settings: a new apply pass, started from the script so that
        // it already has the new value (h1data/M4L-MIDI-tool-examples, memo: bang
        // live.miditool.in from js, not straight from the control).
        this.miditool.start();
    }
};

Device.prototype.text = function (id, words) {
    // textedit sends "text <its text>" (outputmode 1 keeps the text one symbol).
    var parts = words.slice();
    if (parts.length && parts[0] === "text") {
        parts.shift();
    }
    this.changed(id, parts.join(" "));
};

function controlParams(controls, values, params, followLiveItem) {
    // Control values as the flat key/value list the bridge takes: {params, followLive}, where
    // followLive says a menu chose the item that takes the key from Live. `params` is the tool's
    // (or mode's) parameter list from the tool table, for each one's kind.
    var out = [];
    var followLive = false;
    var kinds = {};
    var ids = {};
    for (var p = 0; p < params.length; p++) {
        kinds[params[p].name] = params[p].kind;
    }
    for (var k = 0; k < controls.length; k++) {
        ids[controls[k].id] = true;
    }
    for (var i = 0; i < controls.length; i++) {
        var c = controls[i];
        var value = values[c.id];
        if (!c.param || c.role === "enabled") {
            continue;
        }
        if (ids[c.param + "_on"] && !values[c.param + "_on"]) {
            continue;  // optional value switched off: the tool's default (none) applies
        }
        if (c.role === "menu") {
            var chosen = c.values[Math.round(value)];
            if (chosen === followLiveItem) {
                followLive = true;
            } else if (chosen !== null && chosen !== undefined) {
                out.push(c.param, chosen);
            }
        } else if (c.role === "text") {
            if (value !== undefined && value !== null && String(value).replace(/\s/g, "") !== "") {
                out.push(c.param, String(value));
            }
        } else {
            out.push(c.param, kinds[c.param] === "float" ? Number(value) : Math.round(Number(value)));
        }
    }
    return {params: out, followLive: followLive};
}

function scaleMode(modes, intervals) {
    // Live's scale (intervals above the root) as one of the bridge's mode names, or null.
    var key = intervals.join(",");
    for (var name in modes) {
        if (modes[name].join(",") === key) {
            return name;
        }
    }
    return null;
}

Device.prototype.requestParams = function () {
    var request = controlParams(this.controls, this.values, this.spec.params, this.table.follow_live);
    if (this.kind !== "effect") {
        for (var name in this.table.fixed_in_midi_tools) {
            if (this.paramSpec(name)) {
                request.params.push(name, this.table.fixed_in_midi_tools[name]);
            }
        }
    }
    return request;
};

Device.prototype.modeFor = function (intervals) {
    return scaleMode(this.table.modes, intervals);
};

Device.prototype.liveScale = function (scale) {
    // {root, intervals, name} from Live -> {root, mode} for a clip header, or null.
    if (!scale) {
        this.notice = "Live's Scale Mode is off: no key used";
        return null;
    }
    var mode = this.modeFor(scale.intervals);
    if (!mode) {
        this.notice = "Live scale " + scale.name + " has no bridge mode: no key used";
        return null;
    }
    return {root: scale.root, mode: mode};
};

Device.prototype.fail = function (text) {
    this.status("Error: " + text);
};

Device.prototype.run = function () {
    if (!this.ready) {
        this.fail(this.portError || "the device is still opening its reply port; press Run again in a moment");
        return;
    }
    if (this.client.busy()) {
        this.client.cancel();  // one button: pressing Run while the bridge works stops it
        return;
    }
    this.notice = "";
    if (this.kind !== "effect") {
        // A fresh request even when the result is known; it goes out from the pass, which
        // brings the notes.
        this.pass.forced = true;
        this.status("Reading the clip...");
        this.miditool.start();
        return;
    }
    var job;
    try {
        job = this.collectInputs();
    } catch (e) {
        this.fail(e.message);
        return;
    }
    this.send(job);
};

Device.prototype.pick = function (which) {
    // Interpolate: remember the selected clip as clip A or B (1-based, as Live shows them).
    try {
        var selected = this.live.selectedClip();
        if (!selected) {
            this.fail("Select a clip first, then press Set " + which.toUpperCase());
            return;
        }
        this.live.readClip(selected.track, selected.slot);  // refuse audio clips now, not later
        this.setPicked(which, selected.track + 1, selected.slot + 1);
        this.status("Clip " + which.toUpperCase() + ": track " + (selected.track + 1) + ", slot " + (selected.slot + 1));
    } catch (e) {
        this.fail(e.message);
    }
};

Device.prototype.setPicked = function (which, track, slot) {
    // Overridden by mb_device.js to move the number boxes too, so the choice is saved.
    this.values[which + "_track"] = track;
    this.values[which + "_slot"] = slot;
};

Device.prototype.collectInputs = function () {
    // The input clips and where results go: {clips, fromSlot, source, replace}.
    var request = this.requestParams();
    var song = this.live.songContext();
    var scale = request.followLive ? this.liveScale(song.scale) : null;
    var clips = [];
    var fromSlot;
    var sources = [];
    if (this.spec.inputs[1] === 2) {
        var picks = ["a", "b"];
        for (var i = 0; i < picks.length; i++) {
            var track = Math.round(this.values[picks[i] + "_track"] || 0);
            var slot = Math.round(this.values[picks[i] + "_slot"] || 0);
            if (track < 1 || slot < 1) {
                throw new Error("Choose clip " + picks[i].toUpperCase() + ": select it and press Set " +
                                picks[i].toUpperCase());
            }
            clips.push(this.live.readClip(track - 1, slot - 1));
            sources.push(clips[i].name);
            fromSlot = fromSlot === undefined ? slot : fromSlot;
        }
    } else if (this.spec.inputs[0] === 0) {
        // Generate: no notes in, but a context clip so the result follows the set's meter.
        var beatsPerBar = song.numerator * 4 / song.denominator;
        clips.push({name: "", length: beatsPerBar * this.paramValue(request.params, "bars", 4), tempo: song.tempo,
                    numerator: song.numerator, denominator: song.denominator, notes: []});
        fromSlot = this.live.selectedScene();
    } else {
        var selected = this.live.selectedClip();
        if (!selected) {
            throw new Error("Select a MIDI clip in Session View first");
        }
        clips.push(this.live.readClip(selected.track, selected.slot));
        sources.push(clips[0].name);
        fromSlot = selected.slot + 1;
    }
    for (var k = 0; k < clips.length; k++) {
        clips[k].scale = scale;
    }
    var track = this.live.ownTrack();
    if (!this.live.trackAcceptsMidi(track)) {
        throw new Error("Put the device on a MIDI track");
    }
    return {clips: clips, params: request.params, track: track, fromSlot: fromSlot,
            source: sources.join("+"), replace: !!this.values.replace};
};

Device.prototype.paramValue = function (params, name, fallback) {
    for (var i = 0; i < params.length - 1; i += 2) {
        if (params[i] === name) {
            return params[i + 1];
        }
    }
    return fallback;
};

Device.prototype.send = function (job) {
    var self = this;
    if (this.client.busy()) {
        // A MIDI Tool pass with new settings replaces the request still running.
        this.running.superseded = true;
        this.client.cancel();
    }
    this.running = job;
    this.status(job.miditool ? "Waiting for the bridge; the notes stay as they are until it answers" :
                "Waiting for the bridge...");
    this.client.run(this.tool, job.clips, job.params, {
        progress: function (fraction, text) {
            self.status("Working " + Math.round(fraction * 100) + "%" + (text ? ": " + text : ""));
        },
        notice: function (text) {
            self.notice = self.notice ? self.notice + "; " + text : text;
        },
        result: function (clips) {
            // Never write from the reply callback itself: Live refuses changes made while it
            // notifies, and udpreceive may deliver on the high-priority thread.
            self.defer(function () { self.deliver(job, clips); });
        },
        error: function (code, text) {
            if (job.superseded) {
                return;
            }
            if (code === "no_server" || code === "cancelled") {
                self.status(text);
            } else {
                self.fail(text + " (" + code + ")");
            }
        }
    });
};

Device.prototype.clipName = function (index, count, source) {
    return this.tool + " " + (index + 1) + "/" + count + (source ? " " + source : "");
};

Device.prototype.deliver = function (job, clips) {
    if (job.miditool) {
        this.deliverNotes(job, clips);
        return;
    }
    if (!clips.length) {
        this.status("Done: the bridge returned no clips");
        return;
    }
    try {
        var slots = this.live.findTargetSlots(job.track, job.fromSlot, clips.length, job.replace);
        for (var i = 0; i < clips.length; i++) {
            this.live.writeClip(job.track, slots[i], clips[i], this.clipName(i, clips.length, job.source),
                                this.spec.color, job.replace);
        }
        var where = slots.length === 1 ? "slot " + (slots[0] + 1) : "slots " + (slots[0] + 1) + "-" +
            (slots[slots.length - 1] + 1);
        this.status("Done: " + clips.length + " clip" + (clips.length === 1 ? "" : "s") + " in " + where +
                    (this.notice ? " (" + this.notice + ")" : ""));
    } catch (e) {
        this.fail(e.message);
    }
};

// Live 12 MIDI Tools --------------------------------------------------------------------
//
// Live hands the notes over in an apply pass (live.miditool.in) and takes an answer only inside
// that same pass (live.miditool.out): a late one is refused with "Received a Note dictionary
// asynchronously", a missing one with "Did not receive a Note dictionary in time"
// (h1data/M4L-MIDI-tool-examples, memo). The bridge takes longer, so every pass is answered at
// once, with the result for this input and these settings when it is known, else with the notes
// as they were. The bridge is asked only when the input or the settings changed, or on Run; its
// result starts a new pass (a bang to live.miditool.in, Cycling '74 reference) that outputs it.

function liveNote(n, offset) {
    return {pitch: Number(n.pitch), start_time: Number(n.start_time) + offset, duration: Number(n.duration),
            velocity: n.velocity === undefined ? 100 : Number(n.velocity), mute: n.mute ? 1 : 0,
            probability: n.probability === undefined ? 1 : Number(n.probability),
            velocity_deviation: n.velocity_deviation === undefined ? 0 : Number(n.velocity_deviation),
            release_velocity: n.release_velocity === undefined ? 64 : Number(n.release_velocity)};
}

function liveNotes(list, offset) {
    var out = [];
    for (var i = 0; i < list.length; i++) {
        out.push(liveNote(list[i], offset));
    }
    return out;
}

Device.prototype.midiToolJob = function (given, context) {
    // What a pass asks for: the notes that start inside the time selection, moved to beat 0;
    // the others are returned as they are, because Live replaces every note it handed over
    // with the answer. A Generator is handed no notes (Live 12 manual, MIDI Tools).
    var request = this.requestParams();
    var from = Number(context.clip.time_selection_start);
    var to = Number(context.clip.time_selection_end);
    if (!(to > from)) {
        throw new Error("Select a time range in the clip first");
    }
    var scale = null;
    this.notice = "";
    if (request.followLive) {
        var s = context.scale;
        scale = this.liveScale(s && Number(s.scale_mode) === 1 ?
            {root: Number(s.root_note), intervals: s.scale_intervals, name: s.scale_name || "?"} : null);
    }
    var inside = [];
    var outside = [];
    for (var i = 0; i < given.length; i++) {
        var n = given[i];
        if (n.start_time >= from && n.start_time < to) {
            var note = liveNote(n, -from);
            note.duration = Math.min(note.duration, to - n.start_time);
            inside.push(note);
        } else {
            outside.push(liveNote(n, 0));
        }
    }
    inside.sort(function (a, b) { return a.start_time - b.start_time || a.pitch - b.pitch; });
    var song = this.live.songContext();
    var clip = {name: "", length: to - from, tempo: song.tempo, numerator: song.numerator,
                denominator: song.denominator, scale: scale, notes: this.kind === "generator" ? [] : inside};
    return {clips: [clip], params: request.params, miditool: true, offset: from, outside: outside,
            key: JSON.stringify([clip, request.params])};
};

Device.prototype.midiToolInput = function (notesDict, context) {
    // One apply pass: answer now, whatever happens.
    var given = (notesDict && notesDict.notes) || [];
    var pass = this.pass;
    var job;
    try {
        job = this.midiToolJob(given, context);
    } catch (e) {
        this.miditool.output(liveNotes(given, 0));
        this.fail(e.message);
        return;
    }
    var known = pass.cache !== null && pass.cache.key === job.key;
    this.miditool.output(known ? job.outside.concat(liveNotes(pass.cache.notes, job.offset)) : liveNotes(given, 0));
    if (!this.ready) {
        return;  // no request before the reply port is open; the next pass asks
    }
    var forced = pass.forced;
    pass.forced = false;
    if (known && !forced) {
        this.status("Done: " + pass.cache.notes.length + " notes" + (this.notice ? " (" + this.notice + ")" : ""));
        return;
    }
    if (forced || job.key !== pass.sentKey) {
        pass.sentKey = job.key;
        this.send(job);
    }
    // Else this input was asked for already: its result, or its error, is shown when it comes.
};

Device.prototype.deliverNotes = function (job, clips) {
    if (!clips.length) {
        this.fail("the bridge returned no notes");
        return;
    }
    var notes = clips[0].notes;
    if (this.kind === "generator") {
        // A Generator fills the time selection (Live 12 manual, MIDI Tools): nothing after it.
        notes = notes.filter(function (n) { return n.start_time < job.clips[0].length; });
    }
    this.pass.cache = {key: job.key, notes: notes};
    this.status("Result ready: applying");
    this.miditool.start();
};

if (typeof exports !== "undefined") {
    exports.Device = Device;
    exports.controlParams = controlParams;
    exports.scaleMode = scaleMode;
}
