// A Live Object Model simulator for the device tests, written from the LOM reference.
//
// It models what the devices touch: the song (tempo, meter, Live 12 scale, scenes,
// create_scene), its view (selected scene, detail clip, highlighted slot), MIDI and audio
// tracks, clip slots (create_clip refuses full slots and audio tracks), clips with the Live 11
// note API (note ids, get_notes_extended with pitch first, add_new_notes,
// remove_notes_extended) and devices inside racks (canonical_parent through chains).
// `sim.LiveAPI` behaves like Max's LiveAPI: get() returns arrays, objects come as ["id", n].
// While `sim.notifying` is true every write throws, as Live does for changes made from a
// notification: the tests set it while delivering bridge replies, so a device that writes
// without deferring fails.
"use strict";

const NOTIFY_ERROR = "Changes cannot be triggered by notifications. You will need to defer your response.";

class Sim {
    constructor({scenes = 4, tempo = 120, numerator = 4, denominator = 4} = {}) {
        this.objects = new Map();
        this.nextId = 1;
        this.nextNoteId = 1;
        this.notifying = false;
        this.writes = [];
        this.song = this.make("Song", {tempo, signature_numerator: numerator, signature_denominator: denominator,
                                      root_note: 0, scale_name: "Major", scale_mode: 0,
                                      scale_intervals: [0, 2, 4, 5, 7, 9, 11]});
        this.song.tracks = [];
        this.song.scenes = [];
        this.view = this.make("Song.View", {});
        this.view.parent = this.song;
        this.view.refs = {selected_scene: null, detail_clip: null, highlighted_clip_slot: null};
        this.thisDevice = null;
        for (let i = 0; i < scenes; i++) {
            this.song.scenes.push(this.make("Scene", {name: ""}));
        }
        this.LiveAPI = makeLiveAPI(this);
    }

    make(type, props) {
        const obj = {type, id: this.nextId++, props};
        this.objects.set(obj.id, obj);
        return obj;
    }

    // Building a set -----------------------------------------------------------------------

    addTrack({name = "", midi = true} = {}) {
        const track = this.make("Track", {name, has_midi_input: midi ? 1 : 0, has_audio_input: midi ? 0 : 1});
        track.parent = this.song;
        track.clip_slots = this.song.scenes.map(() => this.makeSlot(track));
        track.devices = [];
        this.song.tracks.push(track);
        return this.song.tracks.length - 1;
    }

    makeSlot(track) {
        const slot = this.make("ClipSlot", {});
        slot.parent = track;
        slot.clip = null;
        return slot;
    }

    addClip(trackIndex, slotIndex, {length = 4, name = "", notes = [], looping = 1, loop_start = 0,
                                     loop_end = null, midi = true} = {}) {
        const slot = this.song.tracks[trackIndex].clip_slots[slotIndex];
        const clip = this.makeClip(slot, length, midi);
        Object.assign(clip.props, {name, looping, loop_start, loop_end: loop_end === null ? length : loop_end});
        for (const note of notes) {
            clip.notes.push(this.fullNote(note));
        }
        return clip;
    }

    makeClip(slot, length, midi) {
        const clip = this.make("Clip", {name: "", color: 0x3C3C3C, length, looping: 1, loop_start: 0, loop_end: length,
                                        start_marker: 0, end_marker: length,
                                        signature_numerator: this.song.props.signature_numerator,
                                        signature_denominator: this.song.props.signature_denominator,
                                        is_midi_clip: midi ? 1 : 0, is_audio_clip: midi ? 0 : 1});
        clip.parent = slot;
        clip.notes = [];
        slot.clip = clip;
        return clip;
    }

    fullNote(note) {
        return {note_id: this.nextNoteId++, pitch: note.pitch, start_time: note.start_time, duration: note.duration,
                velocity: note.velocity === undefined ? 100 : note.velocity, mute: note.mute ? 1 : 0,
                probability: note.probability === undefined ? 1 : note.probability,
                velocity_deviation: note.velocity_deviation || 0,
                release_velocity: note.release_velocity === undefined ? 64 : note.release_velocity};
    }

    placeDevice(trackIndex, {inRack = false} = {}) {
        // The device the script runs in; inside a rack its parent is a chain, not the track.
        const track = this.song.tracks[trackIndex];
        let host = track;
        if (inRack) {
            const rack = this.make("MidiEffectGroupDevice", {name: "Rack"});
            rack.parent = track;
            rack.chains = [];
            track.devices.push(rack);
            const chain = this.make("Chain", {name: "Chain"});
            chain.parent = rack;
            chain.devices = [];
            rack.chains.push(chain);
            host = chain;
        }
        const device = this.make("MaxDevice", {name: "MB"});
        device.parent = host;
        host.devices.push(device);
        this.thisDevice = device;
        return device;
    }

    select({track, slot, detail = true}) {
        const clipSlot = this.song.tracks[track].clip_slots[slot];
        this.view.refs.highlighted_clip_slot = clipSlot;
        this.view.refs.detail_clip = detail ? clipSlot.clip : null;
        this.view.refs.selected_scene = this.song.scenes[slot];
    }

    clipAt(track, slot) {
        return this.song.tracks[track].clip_slots[slot].clip;
    }

    // Paths ----------------------------------------------------------------------------------

    pathOf(obj) {
        switch (obj.type) {
        case "Song": return "live_set";
        case "Song.View": return "live_set view";
        case "Track": return `live_set tracks ${this.song.tracks.indexOf(obj)}`;
        case "Scene": return `live_set scenes ${this.song.scenes.indexOf(obj)}`;
        case "ClipSlot": return `${this.pathOf(obj.parent)} clip_slots ${obj.parent.clip_slots.indexOf(obj)}`;
        case "Clip": return `${this.pathOf(obj.parent)} clip`;
        case "Chain": return `${this.pathOf(obj.parent)} chains ${obj.parent.chains.indexOf(obj)}`;
        default: return `${this.pathOf(obj.parent)} devices ${obj.parent.devices.indexOf(obj)}`;
        }
    }

    resolve(path) {
        const words = String(path).replace(/"/g, "").trim().split(/\s+/);
        if (words[0] === "id") {
            return this.objects.get(Number(words[1])) || null;
        }
        if (words[0] === "this_device") {
            return this.thisDevice;
        }
        if (words[0] !== "live_set") {
            return null;
        }
        let obj = this.song;
        for (let i = 1; i < words.length && obj; i++) {
            const word = words[i];
            const list = obj[word];
            if (Array.isArray(list)) {
                obj = list[Number(words[++i])] || null;
            } else if (word === "view" && obj === this.song) {
                obj = this.view;
            } else if (word === "clip" && obj.type === "ClipSlot") {
                obj = obj.clip;
            } else {
                return null;
            }
        }
        return obj;
    }

    // Reading and writing -------------------------------------------------------------------

    write(obj, what) {
        if (this.notifying) {
            throw new Error(NOTIFY_ERROR);
        }
        this.writes.push(`${this.pathOf(obj)} ${what}`);
    }

    get(obj, prop) {
        if (prop === "canonical_parent") {
            return ["id", obj.parent ? obj.parent.id : 0];
        }
        if (obj.type === "Song.View" && prop in obj.refs) {
            return ["id", obj.refs[prop] ? obj.refs[prop].id : 0];
        }
        if (obj.type === "ClipSlot" && prop === "has_clip") {
            return [obj.clip ? 1 : 0];
        }
        if (obj.type === "ClipSlot" && prop === "clip") {
            return ["id", obj.clip ? obj.clip.id : 0];
        }
        if (Array.isArray(obj[prop])) {
            return obj[prop].flatMap((child) => ["id", child.id]);
        }
        if (!(prop in obj.props)) {
            throw new Error(`${obj.type} has no property ${prop}`);
        }
        const value = obj.props[prop];
        return Array.isArray(value) ? value.slice() : [value];
    }

    set(obj, prop, value) {
        this.write(obj, `set ${prop}`);
        if (obj.type === "Clip" && ["length", "is_midi_clip", "is_audio_clip"].includes(prop)) {
            throw new Error(`Clip.${prop} is read-only`);
        }
        if (!(prop in obj.props)) {
            throw new Error(`${obj.type} has no property ${prop}`);
        }
        obj.props[prop] = value;
    }

    call(obj, fn, args) {
        const method = this.methods[`${obj.type}.${fn}`];
        if (!method) {
            throw new Error(`${obj.type} has no function ${fn}`);
        }
        return method.call(this, obj, ...args);
    }
}

Sim.prototype.methods = {
    "Song.create_scene"(song, index) {
        this.write(song, "create_scene");
        const at = index === -1 || index === undefined ? song.scenes.length : index;
        if (at < 0 || at > song.scenes.length) {
            throw new Error("create_scene: index out of range");
        }
        song.scenes.splice(at, 0, this.make("Scene", {name: ""}));
        for (const track of song.tracks) {
            track.clip_slots.splice(at, 0, this.makeSlot(track));
        }
        return ["id", song.scenes[at].id];
    },
    "ClipSlot.create_clip"(slot, length) {
        this.write(slot, "create_clip");
        if (slot.clip) {
            throw new Error("create_clip: the clip slot is not empty");
        }
        if (!slot.parent.props.has_midi_input) {
            throw new Error("create_clip: only MIDI tracks can hold new MIDI clips");
        }
        if (!(length > 0)) {
            throw new Error("create_clip: length must be greater than 0");
        }
        this.makeClip(slot, length, true);
    },
    "ClipSlot.delete_clip"(slot) {
        this.write(slot, "delete_clip");
        if (slot.clip) {
            this.objects.delete(slot.clip.id);
        }
        slot.clip = null;
    },
    "Clip.get_notes_extended"(clip, fromPitch, pitchSpan, fromTime, timeSpan) {
        // Pitch range first, then time; a note is returned when it starts inside both ranges.
        if ([fromPitch, pitchSpan, fromTime, timeSpan].some((v) => typeof v !== "number")) {
            throw new Error("get_notes_extended takes from_pitch pitch_span from_time time_span");
        }
        const notes = clip.notes.filter((n) => n.pitch >= fromPitch && n.pitch < fromPitch + pitchSpan &&
            n.start_time >= fromTime && n.start_time < fromTime + timeSpan);
        return JSON.stringify({notes: notes.map((n) => ({...n}))});  // Max hands the dict over as JSON text
    },
    "Clip.add_new_notes"(clip, dict) {
        this.write(clip, "add_new_notes");
        if (!clip.props.is_midi_clip || !dict || !Array.isArray(dict.notes)) {
            throw new Error("add_new_notes takes a dictionary {notes: [...]}");
        }
        const ids = [];
        for (const note of dict.notes) {
            for (const key of ["pitch", "start_time", "duration", "velocity"]) {
                if (typeof note[key] !== "number" || !Number.isFinite(note[key])) {
                    throw new Error(`add_new_notes: note.${key} must be a number`);
                }
            }
            if (note.pitch < 0 || note.pitch > 127 || note.duration <= 0) {
                throw new Error("add_new_notes: pitch or duration out of range");
            }
            const full = this.fullNote(note);
            clip.notes.push(full);
            ids.push(full.note_id);
        }
        return ids;
    },
    "Clip.remove_notes_extended"(clip, fromPitch, pitchSpan, fromTime, timeSpan) {
        this.write(clip, "remove_notes_extended");
        clip.notes = clip.notes.filter((n) => !(n.pitch >= fromPitch && n.pitch < fromPitch + pitchSpan &&
            n.start_time >= fromTime && n.start_time < fromTime + timeSpan));
    }
};

function makeLiveAPI(sim) {
    // Max's LiveAPI: new LiveAPI([callback,] path); an unknown path gives id 0.
    return class LiveAPI {
        constructor(a, b) {
            this.goto(typeof a === "function" ? b : a);
        }

        goto(path) {
            this.obj = sim.resolve(path);
        }

        get id() {
            return this.obj ? String(this.obj.id) : "0";
        }

        get type() {
            return this.obj ? this.obj.type : "";
        }

        get unquotedpath() {
            return this.obj ? sim.pathOf(this.obj) : "";
        }

        get path() {
            return `"${this.unquotedpath}"`;
        }

        need() {
            if (!this.obj) {
                throw new Error("LiveAPI: invalid object (id 0)");
            }
            return this.obj;
        }

        get(prop) {
            return sim.get(this.need(), prop);
        }

        set(prop, value) {
            sim.set(this.need(), prop, value);
        }

        call(fn, ...args) {
            return sim.call(this.need(), fn, args);
        }

        getcount(prop) {
            const list = this.need()[prop];
            if (!Array.isArray(list)) {
                throw new Error(`${this.obj.type} has no list ${prop}`);
            }
            return list.length;
        }
    };
}

module.exports = {Sim, NOTIFY_ERROR};
