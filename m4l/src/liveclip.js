// Everything the devices do through the Live Object Model, in one place.
//
// ES5 only (Max's `js` is SpiderMonkey 1.8.5): no let/const, arrow functions or classes.
// The LiveAPI constructor is injected: Max's global `LiveAPI` in a device, the simulator in
// m4l/tests under node. Reads may happen anywhere; every method that writes (create_clip,
// add_new_notes, create_scene, set) must be called from a deferred task, never from an
// observer callback or the high-priority thread: mb_device.js and the tests take care of it.

// Notes shorter than this are dropped when a clip is read: Live cannot hold them anyway.
var MIN_DURATION = 1e-4;
// Live's MIDI pitch range is 0-127; a span of 127 would miss pitch 127.
var PITCH_SPAN = 128;

function LiveClip(LiveAPIClass) {
    this.LiveAPI = LiveAPIClass;
}

LiveClip.prototype.api = function (path) {
    return new this.LiveAPI(path);
};

LiveClip.prototype.value = function (api, prop) {
    // LiveAPI.get returns an array; text properties may come back split into words.
    var got = api.get(prop);
    if (got === undefined || got === null) {
        return undefined;
    }
    if (got instanceof Array) {
        return got.length === 1 ? got[0] : got.join(" ");
    }
    return got;
};

LiveClip.prototype.number = function (api, prop) {
    return Number(this.value(api, prop));
};

LiveClip.prototype.objectAt = function (api, prop) {
    // Object properties come back as ["id", n]; id 0 means "none".
    var got = api.get(prop);
    var id = got instanceof Array ? got[got.length - 1] : got;
    if (id === undefined || Number(id) === 0) {
        return null;
    }
    var target = this.api("id " + id);
    return Number(target.id) === 0 ? null : target;
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
    var node = this.api("this_device");
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
    // Tempo, meter and (Live 12) scale of the set; scale is null when Scale Mode is off.
    var song = this.api("live_set");
    var context = {
        tempo: this.number(song, "tempo"),
        numerator: this.number(song, "signature_numerator"),
        denominator: this.number(song, "signature_denominator"),
        scale: null
    };
    var scaleMode = song.get("scale_mode");
    if (scaleMode instanceof Array && Number(scaleMode[0]) === 1) {
        var intervals = song.get("scale_intervals");
        context.scale = {root: this.number(song, "root_note"), intervals: intervals.map(Number),
                         name: String(this.value(song, "scale_name"))};
    }
    return context;
};

LiveClip.prototype.selectedScene = function () {
    var view = this.api("live_set view");
    var scene = this.objectAt(view, "selected_scene");
    return scene ? Math.max(0, indexIn(scene.unquotedpath, "scenes")) : 0;
};

LiveClip.prototype.selectedClip = function () {
    // The clip in the Detail View, else the clip in the highlighted slot: {track, slot} or null.
    var view = this.api("live_set view");
    var clip = this.objectAt(view, "detail_clip");
    if (!clip) {
        var slot = this.objectAt(view, "highlighted_clip_slot");
        clip = slot && Number(this.value(slot, "has_clip")) === 1 ? this.objectAt(slot, "clip") : null;
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

LiveClip.prototype.readClip = function (track, slot) {
    // The notes inside the clip's loop (or, unlooped, between its markers), moved so the loop
    // starts at beat 0, with the set's tempo and the clip's own meter.
    var slotApi = this.api(this.slotPath(track, slot));
    if (Number(slotApi.id) === 0) {
        throw new Error("There is no slot " + (slot + 1) + " on track " + (track + 1));
    }
    if (Number(this.value(slotApi, "has_clip")) !== 1) {
        throw new Error("Slot " + (slot + 1) + " on track " + (track + 1) + " is empty");
    }
    var clip = this.api(this.slotPath(track, slot) + " clip");
    if (Number(this.value(clip, "is_midi_clip")) !== 1) {
        throw new Error("Clip \"" + this.value(clip, "name") + "\" is an audio clip; pick a MIDI clip");
    }
    // loop_start/loop_end are the loop brace for looped clips and the markers otherwise.
    var from = this.number(clip, "loop_start");
    var to = this.number(clip, "loop_end");
    var raw = clip.call("get_notes_extended", 0, PITCH_SPAN, from, to - from);
    var parsed = typeof raw === "string" ? JSON.parse(raw) : raw;
    var notes = [];
    var list = (parsed && parsed.notes) || [];
    for (var i = 0; i < list.length; i++) {
        var n = list[i];
        if (n.start_time < from || n.start_time >= to) {
            continue;
        }
        var start = n.start_time - from;
        var duration = Math.min(n.duration, to - n.start_time);
        if (duration < MIN_DURATION) {
            continue;
        }
        notes.push({pitch: n.pitch, start_time: start, duration: duration, velocity: n.velocity,
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
    var api = this.api("live_set tracks " + track);
    return Number(api.id) !== 0 && Number(this.value(api, "has_midi_input")) === 1;
};

LiveClip.prototype.findTargetSlots = function (track, fromSlot, count, replace) {
    // Slot indexes for `count` results on `track`, starting at `fromSlot`: the next empty
    // ones (occupied slots are skipped), or with `replace` the next `count` slots whatever
    // they hold. Scenes are appended while the track runs out of slots. WRITES (create_scene).
    var trackApi = this.api("live_set tracks " + track);
    var song = this.api("live_set");
    var found = [];
    var slot = Math.max(0, fromSlot);
    while (found.length < count) {
        if (slot >= trackApi.getcount("clip_slots")) {
            song.call("create_scene", -1);
            continue;
        }
        var slotApi = this.api(this.slotPath(track, slot));
        if (replace || Number(this.value(slotApi, "has_clip")) !== 1) {
            found.push(slot);
        }
        slot++;
    }
    return found;
};

LiveClip.prototype.writeClip = function (track, slot, clip, name, color, replace) {
    // Create a clip of the result's length and fill it. WRITES.
    var slotApi = this.api(this.slotPath(track, slot));
    if (Number(this.value(slotApi, "has_clip")) === 1) {
        if (!replace) {
            throw new Error("Slot " + (slot + 1) + " is not empty");
        }
        slotApi.call("delete_clip");
    }
    slotApi.call("create_clip", clip.length);
    var clipApi = this.api(this.slotPath(track, slot) + " clip");
    if (Number(clipApi.id) === 0) {
        throw new Error("Live did not create a clip in slot " + (slot + 1));
    }
    clipApi.set("name", name);
    clipApi.set("color", color);
    if (clip.numerator && clip.denominator) {
        clipApi.set("signature_numerator", clip.numerator);
        clipApi.set("signature_denominator", clip.denominator);
    }
    if (clip.notes.length) {
        clipApi.call("add_new_notes", {notes: clip.notes});
    }
};

if (typeof exports !== "undefined") {
    exports.LiveClip = LiveClip;
    exports.indexIn = indexIn;
}
