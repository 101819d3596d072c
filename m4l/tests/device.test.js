// Whole devices against the Live simulator and a real bridge server on loopback.
//
// tests/test_m4l_js.py starts the server with a fake model whose answers are predictable
// (see `Fake` there) and passes its port as MB_BRIDGE_PORT. Without it these tests skip.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {Sim} = require("./lom");
const {startDevice, deadPort, BRIDGE_PORT, TOOL_TABLE} = require("./harness");
const {NO_SERVER} = require("../src/bridgeclient.js");

const skip = BRIDGE_PORT ? false : "MB_BRIDGE_PORT is not set: run through pytest tests/test_m4l_js.py";
const COLORS = Object.fromEntries(Object.entries(TOOL_TABLE.tools).map(([name, t]) => [name, t.color]));

function set({scenes = 4} = {}) {
    const sim = new Sim({scenes, tempo: 110});
    sim.addTrack({name: "Keys"});
    sim.addTrack({name: "Lead"});
    sim.addTrack({name: "Audio", midi: false});
    return sim;
}

function notesOf(clip) {
    return clip.notes.map((n) => [n.pitch, n.start_time, n.duration, n.velocity]);
}

function requestArgs(dev, tool) {
    const request = dev.sent.find((m) => m.address === `/bridge/${tool}`);
    return request.args.slice(1);
}

async function withDevice(options, body) {
    const dev = await startDevice(options);
    try {
        await body(dev);
    } finally {
        dev.close();
    }
}

test("generate writes its variations to the next empty slots of its own track", {skip}, async () => {
    const sim = set();
    sim.placeDevice(0, {inRack: true});
    sim.addClip(0, 1, {name: "keep me"});
    sim.select({track: 0, slot: 0, detail: false});
    await withDevice({tool: "generate", sim}, async (dev) => {
        dev.device.start();
        assert.equal(await dev.settle(), "Ready: bridge running");
        dev.device.control("variations", 3);
        dev.device.control("bars", 2);
        const outcome = await dev.run();
        assert.equal(outcome, "Done: 3 clips in slots 1-4");
        assert.ok(dev.statuses.some((s) => s.startsWith("Working 50%: sampling")), dev.statuses.join(" | "));
        assert.equal(sim.clipAt(0, 1).props.name, "keep me", "an occupied slot is skipped, never overwritten");
        for (const [v, slot] of [[0, 0], [1, 2], [2, 3]]) {
            const clip = sim.clipAt(0, slot);
            assert.equal(clip.props.name, `generate ${v + 1}/3`);
            assert.equal(clip.props.color, COLORS.generate);
            assert.equal(clip.props.length, 8);
            assert.deepEqual(notesOf(clip), [0, 1, 2, 3, 4, 5, 6, 7].map((b) => [60 + v, b, 0.5, 100]));
        }
        const args = requestArgs(dev, "generate");
        assert.ok(!args.includes("seed") && !args.includes("scale_root") && !args.includes("bundle"),
                  `optional values that are off are not sent: ${args}`);
        assert.deepEqual(args.slice(args.indexOf("type"), args.indexOf("type") + 2), ["type", "melody"]);
    });
});

test("continue reads the selected clip's loop and writes after it on the device's track", {skip}, async () => {
    const sim = set();
    sim.placeDevice(0);
    sim.addClip(1, 0, {name: "Hook", length: 8, loop_start: 4, loop_end: 8, notes: [
        {pitch: 64, start_time: 4, duration: 1}, {pitch: 67, start_time: 6.5, duration: 0.5}, {pitch: 50, start_time: 1, duration: 1}]});
    sim.addClip(0, 1, {name: "busy"});
    sim.select({track: 1, slot: 0});
    await withDevice({tool: "continue", sim}, async (dev) => {
        dev.device.start();
        await dev.settle();
        dev.device.control("variations", 2);
        dev.device.control("length", 1);
        dev.device.control("seed_on", 1);
        dev.device.control("seed", 7);
        assert.equal(await dev.run(), "Done: 2 clips in slots 3-4");
        for (const v of [0, 1]) {
            const clip = sim.clipAt(0, 2 + v);
            assert.equal(clip.props.name, `continue ${v + 1}/2 Hook`);
            assert.equal(clip.props.length, 8);
            assert.deepEqual(notesOf(clip), [[64, 0, 1, 100], [67, 2.5, 0.5, 100], [72 + v, 4, 1, 90]]);
        }
        const args = requestArgs(dev, "continue");
        assert.deepEqual(args.slice(args.indexOf("seed"), args.indexOf("seed") + 2), ["seed", 7]);
    });
});

test("a full track gets a new scene; replace overwrites the slots right below", {skip}, async () => {
    const sim = set({scenes: 2});
    sim.placeDevice(1);
    sim.addClip(1, 0, {name: "Beat", notes: [{pitch: 38, start_time: 0, duration: 0.25}, {pitch: 42, start_time: 1, duration: 0.25}]});
    sim.addClip(1, 1, {name: "Other"});
    sim.select({track: 1, slot: 0});
    await withDevice({tool: "drumify", sim}, async (dev) => {
        dev.device.start();
        await dev.settle();
        assert.equal(await dev.run(), "Done: 1 clip in slot 3");
        assert.equal(sim.song.scenes.length, 3);
        assert.equal(sim.clipAt(1, 2).props.name, "drumify 1/1 Beat");
        assert.deepEqual(notesOf(sim.clipAt(1, 2)), [[36, 0, 0.25, 100], [36, 1, 0.25, 100]]);
        assert.equal(sim.clipAt(1, 1).props.name, "Other");

        dev.device.control("replace", 1);
        assert.equal(await dev.run(), "Done: 1 clip in slot 2");
        assert.equal(sim.clipAt(1, 1).props.name, "drumify 1/1 Beat");
        assert.equal(sim.song.scenes.length, 3);
    });
});

test("with the server down the status says how to start it and nothing is written", {skip}, async () => {
    const sim = set();
    sim.placeDevice(0);
    sim.select({track: 0, slot: 0, detail: false});
    await withDevice({tool: "generate", sim, bridgePort: await deadPort(), ackMs: 300}, async (dev) => {
        dev.device.start();
        assert.equal(await dev.settle(), NO_SERVER);
        assert.equal(await dev.run(), NO_SERVER);
        assert.deepEqual(sim.writes, []);
        assert.ok(!dev.client.busy(), "the device is ready for the next try");
    });
});

test("a bridge error is shown with its code and nothing is written", {skip}, async () => {
    const sim = set();
    sim.placeDevice(0);
    sim.addClip(0, 0, {name: "Beat", notes: [{pitch: 36, start_time: 0, duration: 0.25}]});
    sim.select({track: 0, slot: 0});
    await withDevice({tool: "groove", sim}, async (dev) => {
        dev.device.start();
        await dev.settle();
        dev.device.text("bundle", ["text", "no-such-bundle"]);
        const outcome = await dev.run();
        assert.match(outcome, /^Error: .*no-such-bundle.*\(model_not_installed\)$/);
        assert.deepEqual(sim.writes, []);
    });
});

test("lost upload and result datagrams are sent again", {skip}, async () => {
    const sim = set();
    sim.placeDevice(0);
    const notes = Array.from({length: 70}, (_, i) => ({pitch: 36 + (i % 12), start_time: i * 0.25, duration: 0.125, velocity: 60}));
    sim.addClip(0, 0, {name: "Long", length: 20, notes});
    sim.select({track: 0, slot: 0});
    const drop = (direction, address, args, count) =>
        (direction === "out" && address === "/bridge/notes" && args[2] === 1 && count === 2) ||
        (direction === "in" && address === "/bridge/result_notes" && count <= 2);
    await withDevice({tool: "groove", sim, drop}, async (dev) => {
        dev.device.start();
        await dev.settle();
        assert.equal(await dev.run(), "Done: 1 clip in slot 2");
        assert.deepEqual(notesOf(sim.clipAt(0, 1)), notes.map((n) => [n.pitch, n.start_time, n.duration, 90]));
        assert.ok(dev.sent.some((m) => m.address === "/bridge/resend"), "the client asked for lost chunks");
        assert.equal(dev.sent.filter((m) => m.address === "/bridge/groove").length, 2, "request repeated after missing_input");
    });
});

test("interpolate takes clips A and B from any tracks", {skip}, async () => {
    const sim = set();
    sim.placeDevice(0);
    sim.addClip(1, 0, {name: "A", length: 8, notes: [{pitch: 62, start_time: 0, duration: 1}]});
    sim.addClip(1, 2, {name: "B", length: 4, notes: [{pitch: 70, start_time: 0, duration: 1}]});
    await withDevice({tool: "interpolate", sim}, async (dev) => {
        dev.device.start();
        await dev.settle();
        assert.equal(await dev.run(), "Error: Choose clip A: select it and press Set A");
        sim.select({track: 1, slot: 0});
        dev.device.control("pick_a", 1);
        sim.select({track: 1, slot: 2});
        dev.device.control("pick_b", 1);
        assert.equal(dev.statuses.at(-1), "Clip B: track 2, slot 3");
        dev.device.control("steps", 2);
        assert.equal(await dev.run(), "Done: 2 clips in slots 2-3");
        assert.equal(sim.clipAt(0, 1).props.name, "interpolate 1/2 A+B");
        assert.equal(sim.clipAt(0, 2).props.length, 4);
        assert.deepEqual(notesOf(sim.clipAt(0, 2)), [[63, 0, 1, 100]]);
    });
});

test("scale menu set to Live sends the set's scale with the clip", {skip}, async () => {
    const sim = set();
    sim.placeDevice(0);
    Object.assign(sim.song.props, {scale_mode: 1, root_note: 2, scale_name: "Dorian", scale_intervals: [0, 2, 3, 5, 7, 9, 10]});
    sim.select({track: 0, slot: 0, detail: false});
    await withDevice({tool: "generate", sim}, async (dev) => {
        dev.device.start();
        await dev.settle();
        const root = TOOL_TABLE.tools.generate.controls.effect.find((c) => c.id === "scale_root");
        dev.device.control("scale_root", root.values.indexOf("Live"));
        dev.device.control("variations", 1);
        assert.equal(await dev.run(), "Done: 1 clip in slot 1");
        assert.equal(sim.clipAt(0, 0).notes[0].pitch, 62, "the fake model saw root 2");
        const header = dev.sent.find((m) => m.address === "/bridge/clip").args;
        assert.deepEqual(header.slice(-2), [2, "dorian"]);

        sim.song.props.scale_intervals = [0, 1, 4, 5, 7, 8, 10];
        assert.match(await dev.run(), /^Done: 1 clip in slot 2 \(Live scale Dorian has no bridge mode/);
    });
});

test("a MIDI Tool transformation sends the time selection and returns notes in place", {skip}, async () => {
    const sim = set();
    const output = [];
    let dev;
    const miditool = {
        start() {
            setImmediate(() => dev.device.midiToolInput(
                {notes: [{note_id: 1, pitch: 60, start_time: 8, duration: 1, velocity: 80},
                         {note_id: 2, pitch: 61, start_time: 2, duration: 1, velocity: 80}]},
                {clip: {time_selection_start: 8, time_selection_end: 12},
                 scale: {scale_mode: 1, root_note: 0, scale_intervals: [0, 2, 4, 5, 7, 9, 11], scale_name: "Major"}}));
        },
        output(notes) { output.push(notes); }
    };
    dev = await startDevice({tool: "continue", sim, kind: "transformation", miditool});
    try {
        dev.device.start();
        await dev.settle();
        dev.device.control("length", 1);
        assert.equal(await dev.run(), "Done: 2 notes");
        assert.deepEqual(output[0].map((n) => [n.pitch, n.start_time]), [[60, 8], [72, 12]]);
        const args = requestArgs(dev, "continue");
        assert.deepEqual(args.slice(args.indexOf("variations"), args.indexOf("variations") + 2), ["variations", 1]);
        assert.deepEqual(sim.writes, [], "a MIDI Tool hands notes to Live, it does not write clips");
    } finally {
        dev.close();
    }
});
