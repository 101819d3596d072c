// Everything the devices do through the Live Object Model, in one place.
//
// ES5 only (Max's `js` is SpiderMonkey 1.8.5): no let/const, arrow functions or classes.
// The LiveAPI constructor is injected: Max's global `LiveAPI` in a device, the simulator in
// m4l/tests under node. Reads may happen anywhere; every method that writes (create_clip,
// add_new_notes, create_scene, set) must be called from a deferred task, never from an
// observer callback or the high-priority thread: mb_device.js and the tests take care of it.
//
// The Live API does not throw when it fails: a failed call answers 1 and writes to the Max
// console (adamjmurray/producer-pal, notes from probing Live 12). So nothing here trusts an
// answer: a read must have the shape Live gives (an array; objects as ["id", n] with n > 0),
// and every write is checked by reading back what it should have changed (a clip that now
// exists, a slot count that grew, the notes that are now in the clip). A failure becomes an
// Error whose message is fit for the status line; the device shows it and stops.

// Notes shorter than this are dropped when a clip is read: Live cannot hold them anyway.
var MIN_DURATION = 1e-4;
// Live's MIDI pitch range is 0-127; a span of 127 would miss pitch 127.
var PITCH_SPAN = 128;

function LiveClip(LiveAPIClass) {
    this.LiveAPI = LiveAPIClass;
}

function exists(api) {
    // A LiveAPI on nothing has id 0 ("0", "id 0" or 0 depending on the host: producer-pal).
    var id = String(api.id).replace("id ", "");
    return id !== "" && id !== "0" && id !== "undefined" && id !== "null";
}

LiveClip.prototype.open = function (path, what) {
    var api = new this.LiveAPI(path);
    if (!exists(api)) {
        throw new Error(what + " is not in the Live set");
    }
    return api;
};

LiveClip.prototype.read = function (api, prop) {
    // get() answers an array; anything else is a failure Live wrote to the Max console.
    var got = api.get(prop);
    if (!Array.isArray(got)) {
        throw new Error("Live did not give the " + prop + " of " + api.unquotedpath + " (see the Max console)");
    }
    return got;
};

LiveClip.prototype.value = function (api, prop) {
    // Text properties may come back split into words.
    var got = this.read(api, prop);
    return got.length === 1 ? got[0] : got.join(" ");
};

LiveClip.prototype.number = function (api, prop) {
    var value = Number(this.value(api, prop));
    if (isNaN(value)) {
        throw new Error("Live gave no number for the " + prop + " of " + api.unquotedpath);
    }
    return value;
};

LiveClip.prototype.objectAt = function (api, prop) {
    // Object properties come back as ["id", n]; id 0 means "none".
    var got = this.read(api, prop);
    if (got.length !== 2 || got[0] !== "id" || isNaN(Number(got[1]))) {
        throw new Error("Live gave no object for the " + prop + " of " + api.unquotedpath);
    }
    if (Number(got[1]) === 0) {
        return null;
    }
    var target = new this.LiveAPI("id " + Number(got[1]));
    return exists(target) ? target : null;
};

LiveClip.prototype.count = function (api, prop) {
    var n = api.getcount(prop);
    if (typeof n !== "number" || isNaN(n) || n < 0) {
        throw new Error("Live did not count the " + prop + " of " + api.unquotedpath);
    }
    return n;
};

function indexIn(path, word) {
    // "live_set tracks 3 clip_slots 1" -> indexIn(path, "tracks") === 3
    var parts = String(path).replace(/"/g, "").split(" ");
    for (var i = 0; i < parts.length - 1; i++) {
        if (parts[i] === word) {
            return Number(parts[i + 1]);
        }
    }
    return -1;
}

LiveClip.prototype.ownTrack = function () {
    // this_device -> canonical_parent, walking up through rack chains to the track.
    var node = this.open("this_device", "This device");
    for (var depth = 0; depth < 32 && node; depth++) {
        if (node.type === "Track") {
            var index = indexIn(node.unquotedpath, "tracks");
            if (index < 0) {
                throw new Error("Put the device on a MIDI track (not a return or the main track)");
            }
            return index;
        }
        node = this.objectAt(node, "canonical_parent");
    }
    throw new Error("Could not find the track this device is on");
};

LiveClip.prototype.songContext = function () {
    // Tempo, meter and (Live 12) scale of the set; scale is null when Scale Mode is off, and in
    // Live 11, which has no scale properties (its get() fails, which is not an error here).
    var song = this.open("live_set", "The song");
    var context = {
        tempo: this.number(song, "tempo"),
        numerator: this.number(song, "signature_numerator"),
        denominator: this.number(song, "signature_denominator"),
        scale: null
    };
    var scaleMode = song.get("scale_mode");
    var intervals = song.get("scale_intervals");
    if (Array.isArray(scaleMode) && Number(scaleMode[0]) === 1 && Array.isArray(intervals)) {
        context.scale = {root: this.number(song, "root_note"), intervals: intervals.map(Number),
                         name: String(this.value(song, "scale_name"))};
    }
    return context;
};

LiveClip.prototype.transport = function () {
    // Where Live's transport is: {beat (current_song_time, in beats), playing, tempo}.
    var song = this.open("live_set", "The song");
    return {beat: this.number(song, "current_song_time"), playing: this.number(song, "is_playing") === 1,
            tempo: this.number(song, "tempo")};
};

LiveClip.prototype.observe = function (prop, fn) {
    // Call fn(value) now and on every change of the song's `prop` (a LiveAPI whose `property`
    // is set: Cycling '74, LiveAPI and live.observer references). Live calls it while it
    // notifies: fn must not write to the set, only read and send. Keep the returned api alive.
    var api = new this.LiveAPI(function (args) {
        var words = Array.prototype.slice.call(args || []);
        if (words.length > 1 && words[0] === prop) {
            fn(Number(words[1]));
        }
    }, "live_set");
    api.property = prop;
    return api;
};

LiveClip.prototype.selectedScene = function () {
    var scene = this.objectAt(this.open("live_set view", "The song view"), "selected_scene");
    return scene ? Math.max(0, indexIn(scene.unquotedpath, "scenes")) : 0;
};

LiveClip.prototype.hasClip = function (slotApi) {
    return Number(this.value(slotApi, "has_clip")) === 1;
};

LiveClip.prototype.selectedClip = function () {
    // The clip in the Detail View, else the clip in the highlighted slot: {track, slot} or null.
    var view = this.open("live_set view", "The song view");
    var clip = this.objectAt(view, "detail_clip");
    if (!clip) {
        var slot = this.objectAt(view, "highlighted_clip_slot");
        clip = slot && this.hasClip(slot) ? this.objectAt(slot, "clip") : null;
    }
    if (!clip) {
        return null;
    }
    var track = indexIn(clip.unquotedpath, "tracks");
    var slotIndex = indexIn(clip.unquotedpath, "clip_slots");
    if (track < 0 || slotIndex < 0) {
        throw new Error("The selected clip is an Arrangement clip; select a Session clip");
    }
    return {track: track, slot: slotIndex};
};

LiveClip.prototype.slotPath = function (track, slot) {
    return "live_set tracks " + track + " clip_slots " + slot;
};

LiveClip.prototype.openSlot = function (track, slot) {
    return this.open(this.slotPath(track, slot), "Slot " + (slot + 1) + " on track " + (track + 1));
};

LiveClip.prototype.notesIn = function (clipApi, from, span) {
    // get_notes_extended(from_pitch, pitch_span, from_time, time_span) answers {notes: [...]},
    // as JSON text from Max's js.
    var raw = clipApi.call("get_notes_extended", 0, PITCH_SPAN, from, span);
    var parsed = raw;
    if (typeof raw === "string") {
        try {
            parsed = JSON.parse(raw);
        } catch (e) {
            parsed = null;
        }
    }
    if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.notes)) {
        throw new Error("Live did not give the notes of " + clipApi.unquotedpath + " (see the Max console)");
    }
    return parsed.notes;
};

LiveClip.prototype.readClip = function (track, slot) {
    // The notes inside the clip's loop (or, unlooped, between its markers), moved so the loop
    // starts at beat 0, with the set's tempo and the clip's own meter.
    var slotApi = this.openSlot(track, slot);
    if (!this.hasClip(slotApi)) {
        throw new Error("Slot " + (slot + 1) + " on track " + (track + 1) + " is empty");
    }
    var clip = this.open(this.slotPath(track, slot) + " clip", "The clip in slot " + (slot + 1));
    if (Number(this.value(clip, "is_midi_clip")) !== 1) {
        throw new Error("Clip \"" + this.value(clip, "name") + "\" is an audio clip; pick a MIDI clip");
    }
    // loop_start/loop_end are the loop brace for looped clips and the markers otherwise.
    var from = this.number(clip, "loop_start");
    var to = this.number(clip, "loop_end");
    var list = this.notesIn(clip, from, to - from);
    var notes = [];
    for (var i = 0; i < list.length; i++) {
        var n = list[i];
        if (n.start_time < from || n.start_time >= to) {
            continue;
        }
        var duration = Math.min(n.duration, to - n.start_time);
        if (duration < MIN_DURATION) {
            continue;
        }
        notes.push({pitch: n.pitch, start_time: n.start_time - from, duration: duration, velocity: n.velocity,
                    mute: n.mute ? 1 : 0, probability: n.probability === undefined ? 1 : n.probability,
                    velocity_deviation: n.velocity_deviation || 0,
                    release_velocity: n.release_velocity === undefined ? 64 : n.release_velocity});
    }
    notes.sort(function (a, b) { return a.start_time - b.start_time || a.pitch - b.pitch; });
    var song = this.songContext();
    return {name: String(this.value(clip, "name") || ""), length: to - from, tempo: song.tempo,
            numerator: this.number(clip, "signature_numerator"),
            denominator: this.number(clip, "signature_denominator"), notes: notes};
};

LiveClip.prototype.trackAcceptsMidi = function (track) {
    var api = new this.LiveAPI("live_set tracks " + track);
    return exists(api) && Number(this.value(api, "has_midi_input")) === 1;
};

LiveClip.prototype.findTargetSlots = function (track, fromSlot, count, replace) {
    // Slot indexes for `count` results on `track`, starting at `fromSlot`: the next empty
    // ones (occupied slots are skipped), or with `replace` the next `count` slots whatever
    // they hold. A scene is added when the track runs out of slots, at most `count` times,
    // and each must add a slot. WRITES (create_scene).
    var trackApi = this.open("live_set tracks " + track, "Track " + (track + 1));
    var song = this.open("live_set", "The song");
    var slots = this.count(trackApi, "clip_slots");
    var added = 0;
    var found = [];
    for (var slot = Math.max(0, fromSlot); found.length < count; slot++) {
        if (slot >= slots) {
            if (added === count) {
                throw new Error("Not enough slots after adding " + added + " scenes");
            }
            song.call("create_scene", -1);
            var now = this.count(trackApi, "clip_slots");
            if (now <= slots) {
                throw new Error("Live did not add a scene (" + (count - found.length) +
                                " more slots needed; see the Max console)");
            }
            slots = now;
            added += 1;
        }
        if (replace || !this.hasClip(this.openSlot(track, slot))) {
            found.push(slot);
        }
    }
    return found;
};

LiveClip.prototype.writeClip = function (track, slot, clip, name, color, replace) {
    // Create a clip of the result's length and fill it; each step is read back. WRITES.
    var slotApi = this.openSlot(track, slot);
    var where = "slot " + (slot + 1) + " on track " + (track + 1);
    if (this.hasClip(slotApi)) {
        if (!replace) {
            throw new Error("Slot " + (slot + 1) + " is not empty");
        }
        slotApi.call("delete_clip");
        if (this.hasClip(slotApi)) {
            throw new Error("Live did not delete the clip in " + where);
        }
    }
    slotApi.call("create_clip", clip.length);
    if (!this.hasClip(slotApi)) {
        throw new Error("Live did not create a clip in " + where + " (see the Max console)");
    }
    var clipApi = this.open(this.slotPath(track, slot) + " clip", "The new clip in " + where);
    // Name, colour and meter are cosmetic: Live snaps the colour to its palette, so these are
    // not read back.
    clipApi.set("name", name);
    clipApi.set("color", color);
    if (clip.numerator && clip.denominator) {
        clipApi.set("signature_numerator", clip.numerator);
        clipApi.set("signature_denominator", clip.denominator);
    }
    if (!clip.notes.length) {
        return;
    }
    clipApi.call("add_new_notes", {notes: clip.notes});
    var end = clip.length;
    for (var i = 0; i < clip.notes.length; i++) {
        end = Math.max(end, clip.notes[i].start_time + 1);
    }
    var kept = this.notesIn(clipApi, 0, end).length;
    if (kept !== clip.notes.length) {
        throw new Error("Live kept " + kept + " of " + clip.notes.length + " notes in " + where +
                        " (see the Max console)");
    }
};

if (typeof exports !== "undefined") {
    exports.LiveClip = LiveClip;
    exports.indexIn = indexIn;
}
