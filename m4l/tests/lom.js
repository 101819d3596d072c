// Live, as the device tests see it: the Live Object Model and the Live 12 Clip View that MIDI
// Tools work in. Written to behave as Live does, each behaviour with its public source:
//
// - Paths, properties and functions follow the Live Object Model reference (Cycling '74): the
//   song (tempo, meter, Live 12 scale, scenes, create_scene), its view (selected scene, detail
//   clip, highlighted slot), tracks, clip slots (create_clip refuses full slots and audio
//   tracks), clips with the Live 11 note API (get_notes_extended takes the pitch range first) and
//   devices inside racks (canonical_parent through chains).
// - `sim.LiveAPI` behaves like Max's LiveAPI: get() answers an array, objects come as
//   ["id", n], an unknown path gives id 0.
// - A failed LiveAPI call does not throw: it answers 1 and writes to the Max console
//   (adamjmurray/producer-pal: "insert_chain returns ["id", chainId] on success, or 1 on
//   failure", from probing Live 12). get() and set() on a missing object or property fail the
//   same way here. `sim.console` is the Max console.
// - Writes made while Live notifies are refused ("Changes cannot be triggered by notifications",
//   Max console): the tests set `sim.notifying` while they deliver bridge replies.
// - Faults on demand: `sim.refuse("Song.create_scene")` makes that call fail as above, so the
//   tests can see what a device does when Live says no.
// - Live's transport (`sim.transport`): Song.is_playing, tempo and current_song_time ("the
//   playing position in the Live Set, in beats", LOM reference) run on the wall clock once it
//   plays. Max's transport in every device follows it (Cycling '74, "Timing and Synchronization in
//   Max for Live": transport objects in Live devices synchronize to the Live transport), so
//   maxsim's `when` and `timepoint` read this one.
// - A LiveAPI whose `property` is set observes that property: its callback gets the property's
//   name and value at once and on every change (Cycling '74 live.observer reference: the value is
//   sent once the id and property are set, then "on each change of the property"; a LiveAPI does
//   the same for its `property`). Callbacks run while Live notifies (`sim.notifying`).
"use strict";

const {performance} = require("node:perf_hooks");

const NOTIFY_ERROR = "Changes cannot be triggered by notifications. You will need to defer your response.";
// Not Live: a device that ignores failures could loop forever on them; the sim stops it instead.
const RUNAWAY_FAILURES = 1000;

/** A note as Live stores it: every field of the Live 11 note API, defaults where none given. */
function fullNote(note, noteId) {
    return {note_id: noteId, pitch: note.pitch, start_time: note.start_time, duration: note.duration,
            velocity: note.velocity === undefined ? 100 : note.velocity, mute: note.mute ? 1 : 0,
            probability: note.probability === undefined ? 1 : note.probability,
            velocity_deviation: note.velocity_deviation || 0,
            release_velocity: note.release_velocity === undefined ? 64 : note.release_velocity};
}

/** Live's transport on the wall clock (milliseconds of performance.now()). */
class Transport {
    constructor(sim) {
        this.sim = sim;
        this.playing = false;
        this.beat0 = 0;  // the position at wall0
        this.wall0 = performance.now();
        this.listeners = new Set();  // devices whose timepoints follow the transport
    }

    get tempo() {
        return this.sim.song.props.tempo;
    }

    beatAt(wall) {
        return this.playing ? this.beat0 + (wall - this.wall0) * this.tempo / 60000 : this.beat0;
    }

    wallAt(beat) {
        return this.wall0 + (beat - this.beat0) * 60000 / this.tempo;
    }

    beat() {
        return this.beatAt(performance.now());
    }

    rebase() {
        this.beat0 = this.beat();
        this.wall0 = performance.now();
    }

    /** Press play (from `beat`, else where it stands). */
    play(beat = null) {
        this.rebase();
        if (beat !== null) {
            this.beat0 = beat;
        }
        this.playing = true;
        this.changed("is_playing");
    }

    stop() {
        this.rebase();
        this.playing = false;
        this.changed("is_playing");
    }

    setTempo(tempo) {
        this.rebase();
        this.sim.song.props.tempo = tempo;
        this.changed("tempo");
    }

    changed(prop) {
        for (const listener of this.listeners) {
            listener.transportChanged();
        }
        this.sim.notify(this.sim.song, prop);
    }
}

class Sim {
    constructor({scenes = 4, tempo = 120, numerator = 4, denominator = 4, firstId = 1} = {}) {
        this.objects = new Map();
        this.nextId = firstId;
        this.nextNoteId = 1;
        this.notifying = false;
        this.writes = [];
        this.console = [];
        this.refused = new Set();
        this.failures = 0;
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
        this.observers = [];  // {obj, prop, callback}
        this.transport = new Transport(this);
        this.LiveAPI = makeLiveAPI(this);
    }

    /** Call every observer of obj's `prop`, as Live notifies. */
    notify(obj, prop) {
        for (const observer of this.observers.filter((o) => o.obj === obj && o.prop === prop)) {
            this.tell(observer);
        }
    }

    /** One observer gets [prop, ...value], while Live is notifying. */
    tell(observer) {
        const was = this.notifying;
        this.notifying = true;
        try {
            observer.callback([observer.prop, ...this.get(observer.obj, observer.prop)]);
        } finally {
            this.notifying = was;
        }
    }

    make(type, props) {
        const obj = {type, id: this.nextId++, props};
        this.objects.set(obj.id, obj);
        return obj;
    }

    /** A failed call: 1 back, a line in the Max console. */
    fail(text) {
        this.console.push(text);
        this.failures += 1;
        if (this.failures > RUNAWAY_FAILURES) {
            throw new Error(`runaway: ${RUNAWAY_FAILURES} failed Live API calls, the last: ${text}`);
        }
        return 1;
    }

    refuse(what) {
        this.refused.add(what);
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
        return fullNote(note, this.nextNoteId++);
    }

    placeDevice(trackIndex, {inRack = false} = {}) {
        // A Max device on a track; inside a rack its parent is a chain, not the track.
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

    /** A MIDI Tool's own device object: it sits in the Clip View, on no track. */
    placeTool() {
        const device = this.make("MaxDevice", {name: "MB Tool"});
        device.parent = null;
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
        default: return obj.parent ? `${this.pathOf(obj.parent)} devices ${obj.parent.devices.indexOf(obj)}` : "this_device";
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

    get(obj, prop) {
        if (this.refused.has(`${obj.type}.get ${prop}`)) {
            return this.fail(`get: ${prop}: Live refused`);
        }
        if (obj === this.song && prop === "current_song_time") {
            return [this.transport.beat()];
        }
        if (obj === this.song && prop === "is_playing") {
            return [this.transport.playing ? 1 : 0];
        }
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
            return this.fail(`get: ${obj.type} has no property ${prop}`);
        }
        const value = obj.props[prop];
        return Array.isArray(value) ? value.slice() : [value];
    }

    /** Whether a write may happen now; otherwise why not (the caller answers 1 with it). */
    writeRefusal(obj, what) {
        if (this.notifying) {
            return NOTIFY_ERROR;
        }
        if (this.refused.has(`${obj.type}.${what}`)) {
            return `${what}: Live refused`;
        }
        this.writes.push(`${this.pathOf(obj)} ${what}`);
        return null;
    }

    set(obj, prop, value) {
        const refusal = this.writeRefusal(obj, `set ${prop}`);
        if (refusal) {
            return this.fail(refusal);
        }
        if (obj.type === "Clip" && ["length", "is_midi_clip", "is_audio_clip"].includes(prop)) {
            return this.fail(`set: Clip.${prop} is read-only`);
        }
        if (!(prop in obj.props)) {
            return this.fail(`set: ${obj.type} has no property ${prop}`);
        }
        obj.props[prop] = value;
        return 0;
    }

    call(obj, fn, args) {
        const method = this.methods[`${obj.type}.${fn}`];
        if (!method) {
            return this.fail(`call: ${obj.type} has no function ${fn}`);
        }
        return method.call(this, obj, ...args);
    }
}

Sim.prototype.methods = {
    "Song.create_scene"(song, index) {
        const refusal = this.writeRefusal(song, "create_scene");
        if (refusal) {
            return this.fail(refusal);
        }
        const at = index === -1 || index === undefined ? song.scenes.length : index;
        if (at < 0 || at > song.scenes.length) {
            return this.fail("create_scene: index out of range");
        }
        song.scenes.splice(at, 0, this.make("Scene", {name: ""}));
        for (const track of song.tracks) {
            track.clip_slots.splice(at, 0, this.makeSlot(track));
        }
        return ["id", song.scenes[at].id];
    },
    "ClipSlot.create_clip"(slot, length) {
        const refusal = this.writeRefusal(slot, "create_clip");
        if (refusal) {
            return this.fail(refusal);
        }
        if (slot.clip) {
            return this.fail("create_clip: the clip slot is not empty");
        }
        if (!slot.parent.props.has_midi_input) {
            return this.fail("create_clip: only MIDI tracks can hold new MIDI clips");
        }
        if (!(length > 0)) {
            return this.fail("create_clip: length must be greater than 0");
        }
        this.makeClip(slot, length, true);
        return 0;
    },
    "ClipSlot.delete_clip"(slot) {
        const refusal = this.writeRefusal(slot, "delete_clip");
        if (refusal) {
            return this.fail(refusal);
        }
        if (slot.clip) {
            this.objects.delete(slot.clip.id);
        }
        slot.clip = null;
        return 0;
    },
    "Clip.get_notes_extended"(clip, fromPitch, pitchSpan, fromTime, timeSpan) {
        // Pitch range first, then time; a note is returned when it starts inside both ranges.
        if (this.refused.has("Clip.get_notes_extended")) {
            return this.fail("get_notes_extended: Live refused");
        }
        if ([fromPitch, pitchSpan, fromTime, timeSpan].some((v) => typeof v !== "number")) {
            return this.fail("get_notes_extended takes from_pitch pitch_span from_time time_span");
        }
        const notes = clip.notes.filter((n) => n.pitch >= fromPitch && n.pitch < fromPitch + pitchSpan &&
            n.start_time >= fromTime && n.start_time < fromTime + timeSpan);
        return JSON.stringify({notes: notes.map((n) => ({...n}))});  // Max hands the dict over as JSON text
    },
    "Clip.add_new_notes"(clip, dict) {
        const refusal = this.writeRefusal(clip, "add_new_notes");
        if (refusal) {
            return this.fail(refusal);
        }
        if (!clip.props.is_midi_clip || !dict || !Array.isArray(dict.notes)) {
            return this.fail("add_new_notes takes a dictionary {notes: [...]}");
        }
        for (const note of dict.notes) {
            for (const key of ["pitch", "start_time", "duration", "velocity"]) {
                if (typeof note[key] !== "number" || !Number.isFinite(note[key])) {
                    return this.fail(`add_new_notes: note.${key} must be a number`);
                }
            }
            if (note.pitch < 0 || note.pitch > 127 || note.duration <= 0) {
                return this.fail("add_new_notes: pitch or duration out of range");
            }
        }
        const ids = dict.notes.map((note) => {
            const full = this.fullNote(note);
            clip.notes.push(full);
            return full.note_id;
        });
        return ids;
    },
    "Clip.remove_notes_extended"(clip, fromPitch, pitchSpan, fromTime, timeSpan) {
        const refusal = this.writeRefusal(clip, "remove_notes_extended");
        if (refusal) {
            return this.fail(refusal);
        }
        clip.notes = clip.notes.filter((n) => !(n.pitch >= fromPitch && n.pitch < fromPitch + pitchSpan &&
            n.start_time >= fromTime && n.start_time < fromTime + timeSpan));
        return 0;
    }
};

function makeLiveAPI(sim) {
    // Max's LiveAPI: new LiveAPI([callback,] path); an unknown path gives id 0, and every call
    // on it fails as above.
    return class LiveAPI {
        constructor(a, b) {
            this.callback = typeof a === "function" ? a : null;
            this.goto(typeof a === "function" ? b : a);
        }

        get property() {
            return this.observed || "";
        }

        set property(name) {
            // Observe `name`: its value now, then on every change (see the header).
            this.observed = name;
            sim.observers = sim.observers.filter((o) => o.api !== this);
            if (this.obj && this.callback) {
                const observer = {obj: this.obj, prop: name, api: this, callback: (args) => this.callback(args)};
                sim.observers.push(observer);
                sim.tell(observer);
            }
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

        get(prop) {
            return this.obj ? sim.get(this.obj, prop) : sim.fail(`get ${prop}: no valid object`);
        }

        set(prop, value) {
            return this.obj ? sim.set(this.obj, prop, value) : sim.fail(`set ${prop}: no valid object`);
        }

        call(fn, ...args) {
            return this.obj ? sim.call(this.obj, fn, args) : sim.fail(`call ${fn}: no valid object`);
        }

        getcount(prop) {
            if (!this.obj || !Array.isArray(this.obj[prop])) {
                return sim.fail(`getcount ${prop}: no such list`);
            }
            return this.obj[prop].length;
        }
    };
}

// Live 12 MIDI Tools ---------------------------------------------------------------------------

const NOT_IN_TIME = "Did not receive a Note dictionary in time. Make sure that the dictionary is synchronous.";
const ASYNC = "Received a Note dictionary asynchronously. Make sure that the dictionary is synchronous.";

/**
 * The MIDI clip open in Live 12's Clip View, with a MIDI Tool in its Transform or Generate panel.
 *
 * - An apply pass (Apply, Auto Apply, or a bang to live.miditool.in) sends the context and then
 *   the notes (Max outlets fire right to left) and takes the tool's answer only while that
 *   dispatch runs: the messages and rules are those h1data/M4L-MIDI-tool-examples' memo lists
 *   ("Did not receive a Note dictionary in time" when no answer came within the pass, "Received a
 *   Note dictionary asynchronously" for one outside any pass, "malformed" for missing keys).
 * - A bang during a cycle continues it with the notes from the cycle's start; a user action
 *   (`interact`) ends the cycle (Cycling '74 live.miditool.in reference).
 * - A Generator is handed no notes and its answer replaces the notes in the time selection; a
 *   Transformation is handed the selection's notes (or, with `handAll`, every note of the
 *   clip) and its answer replaces every note it was handed (Live 12 manual, MIDI Tools;
 *   robenkleene/audio-references).
 * - Auto Apply (on by default, Live 12 manual) starts a pass when a tool parameter changes.
 */
class ClipView {
    constructor({kind, notes = [], selection = [0, 4], scale = null, handAll = false, autoApply = true}) {
        this.kind = kind;
        this.noteId = 1;
        this.notes = notes.map((n) => this.full(n));
        this.selection = selection;
        this.scale = scale;
        this.handAll = handAll;
        this.autoApply = autoApply;
        this.errors = [];  // Live's status bar
        this.passes = 0;
        this.cycle = null;
        this.open = false;
        this.answered = false;
        this.input = null;  // set by the device's live.miditool.in: (context, notes) -> void
    }

    full(n) {
        return fullNote(n, this.noteId++);
    }

    inSelection(n) {
        return n.start_time >= this.selection[0] && n.start_time < this.selection[1];
    }

    startCycle() {
        const handed = this.kind === "generator" ? [] : this.notes.filter((n) => this.handAll || this.inSelection(n));
        const replaced = this.kind === "generator" ? this.notes.filter((n) => this.inSelection(n)) : handed;
        this.cycle = {handed: handed.map((n) => ({...n})), kept: this.notes.filter((n) => !replaced.includes(n))};
    }

    /** One apply pass. */
    apply() {
        if (!this.input) {
            return;
        }
        if (!this.cycle) {
            this.startCycle();
        }
        this.passes += 1;
        const context = {clip: {time_selection_start: this.selection[0], time_selection_end: this.selection[1]},
                         scale: this.scale || {scale_mode: 0}, grid: {interval: 0.25, enabled: 1}};
        this.open = true;
        this.answered = false;
        try {
            this.input(context, {notes: this.cycle.handed.map((n) => ({...n}))});
        } finally {
            this.open = false;
        }
        if (!this.answered) {
            this.errors.push(NOT_IN_TIME);
        }
    }

    /** What live.miditool.out received. */
    answer(dict) {
        if (!this.open) {
            this.errors.push(ASYNC);
            return;
        }
        if (!dict || !Array.isArray(dict.notes)) {
            this.errors.push("The Note dictionary received from Max was malformed: The key `notes` is missing.");
            return;
        }
        for (const note of dict.notes) {
            for (const key of ["pitch", "start_time", "duration"]) {
                if (note[key] === undefined) {
                    this.errors.push(`The Note dictionary received from Max was malformed: The key \`${key}\` is missing.`);
                    return;
                }
            }
        }
        this.answered = true;
        this.notes = this.cycle.kept.concat(dict.notes.map((n) => this.full(n)));
    }

    /** The user clicks elsewhere: the cycle ends, the next pass hands the notes as they are now. */
    interact() {
        this.cycle = null;
    }
}

module.exports = {Sim, ClipView, NOTIFY_ERROR, NOT_IN_TIME, ASYNC};
