// What a device does when its controls move and its Run button is pressed: read the input
// clips, ask the bridge, write the results. Host-independent (ES5): mb_device.js wires it to
// Max, m4l/tests wire it to the Live simulator and a real bridge server.
//
//   new Device({tool, kind, table, client, live, status, defer, miditool})
//   kind: "effect" (MIDI effect: clips go to slots), "generator" / "transformation" (Live 12
//   MIDI Tools: notes go back through live.miditool.out)
//   status(text): the status line; defer(fn): run fn later on the low-priority thread, where
//   the Live API may be written; miditool: {start(), output(notes)} for MIDI Tools.

function Device(options) {
    this.tool = options.tool;
    this.kind = options.kind;
    this.table = options.table;
    this.spec = options.table.tools[options.tool];
    this.controls = this.spec.controls[options.kind];
    this.client = options.client;
    this.live = options.live;
    this.status = options.status;
    this.defer = options.defer;
    this.miditool = options.miditool || null;
    this.values = {};
    this.started = false;
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
    // live.thisdevice has banged: the Live API is usable now. Check that the bridge is up.
    this.started = true;
    var self = this;
    this.status("Looking for the bridge...");
    this.client.ping({
        progress: function () {},
        result: function () { self.status("Ready: bridge running"); },
        error: function (code, text) { self.status(text); }
    });
};

Device.prototype.control = function (id, value) {
    var control = this.controlById(id);
    if (!control) {
        return;
    }
    this.values[id] = Number(value);
    if (!this.started || !Number(value)) {
        return;  // parameters restored while the set loads must not press buttons
    }
    if (control.role === "run") {
        this.run();
    } else if (control.role === "pick" && id.indexOf("pick_") === 0) {
        this.pick(id.slice(5));
    }
};

Device.prototype.text = function (id, words) {
    // textedit output arrives as words, possibly after a "text" selector.
    var parts = words.slice();
    if (parts.length && parts[0] === "text") {
        parts.shift();
    }
    this.values[id] = parts.join(" ");
};

Device.prototype.requestParams = function () {
    // Control values as the flat key/value list the bridge takes. Returns {params, followLive}.
    var out = [];
    var followLive = false;
    for (var i = 0; i < this.controls.length; i++) {
        var c = this.controls[i];
        var value = this.values[c.id];
        if (!c.param || c.role === "enabled") {
            continue;
        }
        if (this.controlById(c.param + "_on") && !this.values[c.param + "_on"]) {
            continue;  // optional value switched off: the tool's default (none) applies
        }
        if (c.role === "menu") {
            var chosen = c.values[Math.round(value)];
            if (chosen === this.table.follow_live) {
                followLive = true;
            } else if (chosen !== null && chosen !== undefined) {
                out.push(c.param, chosen);
            }
        } else if (c.role === "text") {
            if (value !== undefined && value !== null && String(value).replace(/\s/g, "") !== "") {
                out.push(c.param, String(value));
            }
        } else {
            var kind = this.paramSpec(c.param).kind;
            out.push(c.param, kind === "float" ? Number(value) : Math.round(Number(value)));
        }
    }
    if (this.kind !== "effect") {
        for (var name in this.table.fixed_in_midi_tools) {
            if (this.paramSpec(name)) {
                out.push(name, this.table.fixed_in_midi_tools[name]);
            }
        }
    }
    return {params: out, followLive: followLive};
};

Device.prototype.modeFor = function (intervals) {
    // Live's scale (intervals above the root) as one of the bridge's mode names, or null.
    var key = intervals.join(",");
    for (var name in this.table.modes) {
        if (this.table.modes[name].join(",") === key) {
            return name;
        }
    }
    return null;
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
    if (this.client.busy()) {
        this.client.cancel();  // one button: pressing Run while the bridge works stops it
        return;
    }
    this.notice = "";
    if (this.kind !== "effect") {
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
    this.status("Waiting for the bridge...");
    this.client.run(this.tool, job.clips, job.params, {
        progress: function (fraction, text) {
            self.status("Working " + Math.round(fraction * 100) + "%" + (text ? ": " + text : ""));
        },
        result: function (clips) {
            // Never write from the reply callback itself: Live refuses changes made while it
            // notifies, and udpreceive may deliver on the high-priority thread.
            self.defer(function () { self.deliver(job, clips); });
        },
        error: function (code, text) {
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

Device.prototype.midiToolInput = function (notesDict, context) {
    // live.miditool.in has sent the clip's notes and context: send the time selection.
    var request = this.requestParams();
    var from = context.clip.time_selection_start;
    var to = context.clip.time_selection_end;
    var song = this.live.songContext();
    var scale = null;
    if (request.followLive) {
        var s = context.scale;
        scale = this.liveScale(s && Number(s.scale_mode) === 1 ?
            {root: Number(s.root_note), intervals: s.scale_intervals, name: s.scale_name || "?"} : null);
    }
    var notes = [];
    var list = notesDict.notes || [];
    for (var i = 0; i < list.length; i++) {
        var n = list[i];
        if (n.start_time >= from && n.start_time < to) {
            notes.push({pitch: n.pitch, start_time: n.start_time - from, duration: Math.min(n.duration, to - n.start_time),
                        velocity: n.velocity, mute: n.mute ? 1 : 0, probability: n.probability === undefined ? 1 : n.probability,
                        velocity_deviation: n.velocity_deviation || 0,
                        release_velocity: n.release_velocity === undefined ? 64 : n.release_velocity});
        }
    }
    notes.sort(function (a, b) { return a.start_time - b.start_time || a.pitch - b.pitch; });
    var clip = {name: "", length: to - from, tempo: song.tempo, numerator: song.numerator,
                denominator: song.denominator, scale: scale, notes: this.tool === "generate" ? [] : notes};
    this.send({clips: [clip], params: request.params, miditool: true, offset: from});
};

Device.prototype.deliverNotes = function (job, clips) {
    if (!clips.length) {
        this.status("Done: the bridge returned no notes");
        return;
    }
    var notes = [];
    for (var i = 0; i < clips[0].notes.length; i++) {
        var n = clips[0].notes[i];
        notes.push({pitch: n.pitch, start_time: n.start_time + job.offset, duration: n.duration, velocity: n.velocity,
                    mute: n.mute ? 1 : 0, probability: n.probability, velocity_deviation: n.velocity_deviation,
                    release_velocity: n.release_velocity});
    }
    this.miditool.output(notes);
    this.status("Done: " + notes.length + " notes" + (this.notice ? " (" + this.notice + ")" : ""));
};

if (typeof exports !== "undefined") {
    exports.Device = Device;
}
