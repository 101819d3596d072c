// liveclip.js against the Live simulator: reading, finding slots, writing. No server needed.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const {Sim, NOTIFY_ERROR} = require("./lom");
const {LiveClip, indexIn} = require(path.join(__dirname, "..", "src", "liveclip.js"));

function setup() {
    const sim = new Sim({scenes: 4, tempo: 98});
    sim.addTrack({name: "Bass"});
    sim.addTrack({name: "Drums", midi: true});
    sim.addTrack({name: "Vox", midi: false});
    return {sim, live: new LiveClip(sim.LiveAPI)};
}

test("indexIn reads indexes out of LOM paths", () => {
    assert.equal(indexIn("live_set tracks 3 clip_slots 12", "tracks"), 3);
    assert.equal(indexIn("\"live_set tracks 3 clip_slots 12\"", "clip_slots"), 12);
    assert.equal(indexIn("live_set return_tracks 0", "tracks"), -1);
});

test("own track is found through a rack chain", () => {
    const {sim, live} = setup();
    sim.placeDevice(1, {inRack: true});
    assert.equal(live.ownTrack(), 1);
    sim.placeDevice(0);
    assert.equal(live.ownTrack(), 0);
});

test("readClip keeps only notes inside the loop, moved to beat 0, and cut at the loop end", () => {
    const {sim, live} = setup();
    sim.song.props.signature_numerator = 3;
    sim.addClip(0, 1, {length: 16, name: "Riff", loop_start: 4, loop_end: 8, notes: [
        {pitch: 40, start_time: 3.5, duration: 1},  // before the loop
        {pitch: 127, start_time: 4, duration: 0.5, velocity: 90},  // pitch 127 must not be missed
        {pitch: 0, start_time: 7.5, duration: 2, mute: true},  // runs past the loop end
        {pitch: 50, start_time: 8, duration: 1}  // at the loop end: outside
    ]});
    const clip = live.readClip(0, 1);
    assert.equal(clip.name, "Riff");
    assert.equal(clip.length, 4);
    assert.equal(clip.tempo, 98);
    assert.equal(clip.numerator, 3);
    assert.deepEqual(clip.notes.map((n) => [n.pitch, n.start_time, n.duration, n.mute]),
                     [[127, 0, 0.5, 0], [0, 3.5, 0.5, 1]]);
    assert.equal(clip.notes[0].velocity, 90);
});

test("readClip refuses empty slots and audio clips with a message naming them", () => {
    const {sim, live} = setup();
    assert.throws(() => live.readClip(0, 0), /Slot 1 on track 1 is empty/);
    sim.addClip(2, 0, {name: "Take", midi: false});
    assert.throws(() => live.readClip(2, 0), /"Take" is an audio clip/);
});

test("selectedClip prefers the detail clip, then the highlighted slot", () => {
    const {sim, live} = setup();
    assert.equal(live.selectedClip(), null);
    sim.addClip(1, 2, {name: "x"});
    sim.select({track: 1, slot: 2, detail: false});
    assert.deepEqual(live.selectedClip(), {track: 1, slot: 2});
    sim.addClip(0, 3, {name: "y"});
    sim.view.refs.detail_clip = sim.clipAt(0, 3);
    assert.deepEqual(live.selectedClip(), {track: 0, slot: 3});
    assert.equal(live.selectedScene(), 2);
});

test("findTargetSlots skips occupied slots and appends scenes when the track is full", () => {
    const {sim, live} = setup();
    sim.addClip(0, 1, {});
    sim.addClip(0, 2, {});
    assert.deepEqual(live.findTargetSlots(0, 1, 2, false), [3, 4]);
    assert.equal(sim.song.scenes.length, 5);
    assert.equal(sim.song.tracks[2].clip_slots.length, 5, "a new scene adds a slot to every track");
    assert.deepEqual(live.findTargetSlots(0, 1, 2, true), [1, 2], "replace takes the next slots as they are");
});

test("the simulator fails as Live does: 1 back and a line in the Max console, never an exception", () => {
    const {sim} = setup();
    sim.addClip(0, 0, {});
    const full = new sim.LiveAPI("live_set tracks 0 clip_slots 0");
    assert.equal(full.call("create_clip", 4), 1);
    const audio = new sim.LiveAPI("live_set tracks 2 clip_slots 0");
    assert.equal(audio.call("create_clip", 4), 1);
    const nothing = new sim.LiveAPI("live_set tracks 9");
    assert.equal(nothing.id, "0");
    assert.equal(nothing.get("name"), 1);
    sim.notifying = true;
    assert.equal(new sim.LiveAPI("live_set").call("create_scene", -1), 1);
    sim.notifying = false;
    assert.deepEqual(sim.console, ["create_clip: the clip slot is not empty",
                                   "create_clip: only MIDI tracks can hold new MIDI clips",
                                   "get name: no valid object", NOTIFY_ERROR]);
    assert.equal(sim.song.scenes.length, 4, "nothing changed");
});

test("a failed read is an error naming what Live did not give", () => {
    const {sim, live} = setup();
    sim.refuse("Song.View.get detail_clip");
    assert.throws(() => live.selectedClip(), /Live did not give the detail_clip of live_set view/);
    sim.refused.clear();
    sim.refuse("Clip.get_notes_extended");
    sim.addClip(0, 0, {notes: [{pitch: 60, start_time: 0, duration: 1}]});
    assert.throws(() => live.readClip(0, 0), /Live did not give the notes of live_set tracks 0 clip_slots 0 clip/);
});

test("findTargetSlots asks for a scene once when Live refuses it, then stops with an error", () => {
    const {sim, live} = setup();
    for (let slot = 0; slot < 4; slot++) {
        sim.addClip(0, slot, {});
    }
    sim.refuse("Song.create_scene");
    assert.throws(() => live.findTargetSlots(0, 0, 2, false), /Live did not add a scene \(2 more slots needed/);
    assert.deepEqual(sim.console, ["create_scene: Live refused"]);
});

test("writeClip reads back every write that matters", () => {
    const {sim, live} = setup();
    const notes = [{pitch: 60, start_time: 0, duration: 1, velocity: 100, mute: 0, probability: 1,
                    velocity_deviation: 0, release_velocity: 64}];
    sim.refuse("ClipSlot.create_clip");
    assert.throws(() => live.writeClip(0, 0, {length: 4, notes}, "x", 0, false), /Live did not create a clip in slot 1 on track 1/);
    sim.refused.clear();
    sim.refuse("Clip.add_new_notes");
    assert.throws(() => live.writeClip(0, 0, {length: 4, notes}, "x", 0, false), /Live kept 0 of 1 notes in slot 1 on track 1/);
    sim.refused.clear();
    sim.refuse("ClipSlot.delete_clip");
    assert.throws(() => live.writeClip(0, 0, {length: 4, notes}, "x", 0, true), /Live did not delete the clip in slot 1/);
});

test("writeClip creates, names, colours and fills a clip; replace deletes the old one first", () => {
    const {sim, live} = setup();
    const notes = [{pitch: 60, start_time: 0.25, duration: 0.5, velocity: 100, mute: 0, probability: 1,
                    velocity_deviation: 0, release_velocity: 64}];
    live.writeClip(1, 3, {length: 6, numerator: 3, denominator: 4, notes}, "generate 1/2", 0x84DCC6, false);
    const clip = sim.clipAt(1, 3);
    assert.equal(clip.props.length, 6);
    assert.equal(clip.props.name, "generate 1/2");
    assert.equal(clip.props.color, 0x84DCC6);
    assert.equal(clip.props.signature_numerator, 3);
    assert.deepEqual(clip.notes.map((n) => [n.pitch, n.start_time, n.duration]), [[60, 0.25, 0.5]]);
    assert.throws(() => live.writeClip(1, 3, {length: 2, notes}, "again", 0, false), /Slot 4 is not empty/);
    live.writeClip(1, 3, {length: 2, notes: []}, "again", 0, true);
    assert.equal(sim.clipAt(1, 3).props.name, "again");
    assert.equal(sim.clipAt(1, 3).notes.length, 0);
});

test("songContext reads tempo, meter and the Live 12 scale only when Scale Mode is on", () => {
    const {sim, live} = setup();
    assert.equal(live.songContext().scale, null);
    Object.assign(sim.song.props, {scale_mode: 1, root_note: 9, scale_name: "Minor",
                                   scale_intervals: [0, 2, 3, 5, 7, 8, 10]});
    assert.deepEqual(live.songContext(), {tempo: 98, numerator: 4, denominator: 4,
                                          scale: {root: 9, intervals: [0, 2, 3, 5, 7, 8, 10], name: "Minor"}});
});
