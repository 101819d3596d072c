// The MIDI-effect devices, opened from their .amxd files as Live would (maxsim.js over lom.js),
// against a real bridge server on loopback.
//
// tests/test_m4l_js.py starts the server with a fake model whose answers are predictable (see
// `Fake` there) and passes its port as MB_BRIDGE_PORT. Without it these tests skip.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {Sim} = require("./lom");
const {withDevice, deadPort, occupy, BRIDGE_PORT, TOOL_TABLE} = require("./harness");
const {NO_SERVER} = require("../src/bridgeclient.js");

const skip = BRIDGE_PORT ? false : "MB_BRIDGE_PORT is not set: run through pytest tests/test_m4l_js.py";
const COLORS = Object.fromEntries(Object.entries(TOOL_TABLE.tools).map(([name, t]) => [name, t.color]));
const READY = /^Ready: bridge running/;
// Device ids (and so reply ports) of this file's devices differ from the other files' ones.
let nextId = 1000;

function liveSet({scenes = 4, firstId = null} = {}) {
    const sim = new Sim({scenes, tempo: 110, firstId: firstId === null ? (nextId += 100) : firstId});
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

function valueAfter(args, key) {
    return args[args.indexOf(key) + 1];
}

test("Run is a button that sends bang; generate writes its variations to the next empty slots", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0, {inRack: true});
    sim.addClip(0, 1, {name: "keep me"});
    sim.select({track: 0, slot: 0, detail: false});
    await withDevice("MB Generate.amxd", {sim}, async (dev) => {
        assert.match(await dev.settle(), READY);
        dev.set("variations", 3);
        dev.set("bars", 1); // the Bars menu's items are 1, 2, 4, 8: item 1 is 2 bars
        assert.equal(await dev.run(), "Done: 3 clips in slots 1-4");
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
        assert.equal(valueAfter(args, "type"), "melody");
        assert.equal(valueAfter(args, "bars"), 2, "a menu of numbers sends the number, not the item's index");
        assert.deepEqual(sim.console, [], "no Live API call failed");
    });
});

test("continue reads the selected clip's loop and writes after it; a seed past 256 values is sent whole", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    sim.addClip(1, 0, {name: "Hook", length: 8, loop_start: 4, loop_end: 8, notes: [
        {pitch: 64, start_time: 4, duration: 1}, {pitch: 67, start_time: 6.5, duration: 0.5}, {pitch: 50, start_time: 1, duration: 1}]});
    sim.addClip(0, 1, {name: "busy"});
    sim.select({track: 1, slot: 0});
    await withDevice("MB Continue.amxd", {sim}, async (dev) => {
        await dev.settle();
        dev.set("variations", 2);
        dev.set("length", 1);
        dev.set("seed_on", 1);
        dev.set("seed", 16777215);
        assert.equal(await dev.run(), "Done: 2 clips in slots 3-4");
        for (const v of [0, 1]) {
            const clip = sim.clipAt(0, 2 + v);
            assert.equal(clip.props.name, `continue ${v + 1}/2 Hook`);
            assert.equal(clip.props.length, 8);
            assert.deepEqual(notesOf(clip), [[64, 0, 1, 100], [67, 2.5, 0.5, 100], [72 + v, 4, 1, 90]]);
        }
        assert.equal(valueAfter(requestArgs(dev, "continue"), "seed"), 16777215);
    });
});

test("a full track gets a new scene; replace overwrites the slots right below", {skip}, async () => {
    const sim = liveSet({scenes: 2});
    sim.placeDevice(1);
    sim.addClip(1, 0, {name: "Beat", notes: [{pitch: 38, start_time: 0, duration: 0.25}, {pitch: 42, start_time: 1, duration: 0.25}]});
    sim.addClip(1, 1, {name: "Other"});
    sim.select({track: 1, slot: 0});
    await withDevice("MB Drumify.amxd", {sim}, async (dev) => {
        await dev.settle();
        assert.equal(await dev.run(), "Done: 1 clip in slot 3");
        assert.equal(sim.song.scenes.length, 3);
        assert.equal(sim.clipAt(1, 2).props.name, "drumify 1/1 Beat");
        assert.deepEqual(notesOf(sim.clipAt(1, 2)), [[36, 0, 0.25, 100], [36, 1, 0.25, 100]]);
        assert.equal(sim.clipAt(1, 1).props.name, "Other");

        dev.set("replace", 1);
        assert.equal(await dev.run(), "Done: 1 clip in slot 2");
        assert.equal(sim.clipAt(1, 1).props.name, "drumify 1/1 Beat");
        assert.equal(sim.song.scenes.length, 3);
    });
});

test("with the server down the status says how to start it and nothing is written", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    sim.select({track: 0, slot: 0, detail: false});
    await withDevice("MB Generate.amxd", {sim, bridgePort: await deadPort()}, async (dev) => {
        assert.equal(await dev.settle(0, 15000), NO_SERVER);
        assert.equal(await dev.run(), NO_SERVER);
        assert.deepEqual(sim.writes, []);
    });
});

test("a bundle typed in the text field reaches the bridge; its error is shown and nothing is written", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    sim.addClip(0, 0, {name: "Beat", notes: [{pitch: 36, start_time: 0, duration: 0.25}]});
    sim.select({track: 0, slot: 0});
    await withDevice("MB Groove.amxd", {sim}, async (dev) => {
        await dev.settle();
        dev.type("bundle", "no-such-bundle");
        assert.match(await dev.run(), /^Error: .*no-such-bundle.*\(model_not_installed\)$/);
        assert.deepEqual(sim.writes, []);
    });
});

test("a drum map typed with commas reaches the bridge whole (textedit sends one symbol)", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    sim.addClip(0, 0, {name: "Beat", notes: [{pitch: 36, start_time: 0, duration: 0.25}]});
    sim.select({track: 0, slot: 0});
    const map = "35,40,44,46,41,47,50,57,51";
    await withDevice("MB Groove.amxd", {sim}, async (dev) => {
        await dev.settle();
        dev.type("drum_map", map);
        assert.equal(await dev.run(), "Done: 1 clip in slot 2");
        assert.equal(valueAfter(requestArgs(dev, "groove"), "drum_map"), map);
    });
});

test("lost upload and result datagrams are sent again", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    const notes = Array.from({length: 70}, (_, i) => ({pitch: 36 + (i % 12), start_time: i * 0.25, duration: 0.125, velocity: 60}));
    sim.addClip(0, 0, {name: "Long", length: 20, notes});
    sim.select({track: 0, slot: 0});
    const drop = (direction, address, args, count) =>
        (direction === "out" && address === "/bridge/notes" && args[2] === 1 && count === 2) ||
        (direction === "in" && address === "/bridge/result_notes" && count <= 2);
    await withDevice("MB Groove.amxd", {sim, drop}, async (dev) => {
        await dev.settle();
        assert.equal(await dev.run(), "Done: 1 clip in slot 2");
        assert.deepEqual(notesOf(sim.clipAt(0, 1)), notes.map((n) => [n.pitch, n.start_time, n.duration, 90]));
        assert.ok(dev.sent.some((m) => m.address === "/bridge/resend"), "the client asked for lost chunks");
        assert.equal(dev.sent.filter((m) => m.address === "/bridge/groove").length, 2, "request repeated after missing_input");
    });
});

test("interpolate: the Set A and Set B buttons take the selected clips from any tracks", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    sim.addClip(1, 0, {name: "A", length: 8, notes: [{pitch: 62, start_time: 0, duration: 1}]});
    sim.addClip(1, 2, {name: "B", length: 4, notes: [{pitch: 70, start_time: 0, duration: 1}]});
    await withDevice("MB Interpolate.amxd", {sim}, async (dev) => {
        await dev.settle();
        assert.equal(await dev.run(), "Error: Choose clip A: select it and press Set A");
        sim.select({track: 1, slot: 0});
        dev.click("pick_a");
        sim.select({track: 1, slot: 2});
        dev.click("pick_b");
        assert.equal(dev.status, "Clip B: track 2, slot 3");
        assert.equal(dev.control("b_slot").value, 3, "the choice is kept in the saved number box");
        dev.set("steps", 2);
        // A (8 beats) and B (4) differ: the tool's notice reaches the status line (main 849defb)
        assert.equal(await dev.run(), "Done: 2 clips in slots 2-3 (A is 2 bars and B 1 bar: the results are as long " +
                     "as B, and the longer clip is read from its start for that long)");
        assert.equal(sim.clipAt(0, 1).props.name, "interpolate 1/2 A+B");
        assert.equal(sim.clipAt(0, 2).props.length, 4);
        assert.deepEqual(notesOf(sim.clipAt(0, 2)), [[63, 0, 1, 100]]);
    });
});

test("scale menu set to Live sends the set's scale with the clip", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    Object.assign(sim.song.props, {scale_mode: 1, root_note: 2, scale_name: "Dorian", scale_intervals: [0, 2, 3, 5, 7, 9, 10]});
    sim.select({track: 0, slot: 0, detail: false});
    await withDevice("MB Generate.amxd", {sim}, async (dev) => {
        await dev.settle();
        const root = TOOL_TABLE.tools.generate.controls.effect.find((c) => c.id === "scale_root");
        dev.set("scale_root", root.values.indexOf("Live"));
        dev.set("variations", 1);
        assert.equal(await dev.run(), "Done: 1 clip in slot 1");
        assert.equal(sim.clipAt(0, 0).notes[0].pitch, 62, "the fake model saw root 2");
        const header = dev.sent.find((m) => m.address === "/bridge/clip").args;
        assert.deepEqual(header.slice(-2), [2, "dorian"]);

        sim.song.props.scale_intervals = [0, 1, 4, 5, 7, 8, 10];
        assert.match(await dev.run(), /^Done: 1 clip in slot 2 \(Live scale Dorian has no bridge mode/);
    });
});

// Live API failures: answered with 1 and a console line, never thrown --------------------------

test("a scene Live refuses to add ends in a clear error, not an endless loop", {skip}, async () => {
    const sim = liveSet({scenes: 1});
    sim.placeDevice(0);
    sim.addClip(0, 0, {name: "Beat", notes: [{pitch: 36, start_time: 0, duration: 0.25}]});
    sim.select({track: 0, slot: 0});
    sim.refuse("Song.create_scene");
    await withDevice("MB Groove.amxd", {sim}, async (dev) => {
        await dev.settle();
        assert.match(await dev.run(), /^Error: Live did not add a scene \(1 more slots needed/);
        assert.deepEqual(sim.console, ["create_scene: Live refused"], "asked once, then stopped");
    });
});

test("notes Live did not take are reported, not called done", {skip}, async () => {
    const sim = liveSet();
    sim.placeDevice(0);
    sim.addClip(0, 0, {name: "Beat", notes: [{pitch: 36, start_time: 0, duration: 0.25}]});
    sim.select({track: 0, slot: 0});
    sim.refuse("Clip.add_new_notes");
    await withDevice("MB Groove.amxd", {sim}, async (dev) => {
        await dev.settle();
        assert.match(await dev.run(), /^Error: Live kept 0 of 1 notes in slot 2 on track 1/);
    });
});

test("a failed get is an error, never an object that happens to have id 1", {skip}, async () => {
    const sim = liveSet({firstId: 1});  // the song is id 1
    sim.placeDevice(0);
    sim.addClip(0, 0, {name: "Beat", notes: [{pitch: 36, start_time: 0, duration: 0.25}]});
    sim.select({track: 0, slot: 0});
    sim.refuse("Song.View.get detail_clip");
    await withDevice("MB Groove.amxd", {sim}, async (dev) => {
        await dev.settle();
        assert.match(await dev.run(), /^Error: Live did not give the detail_clip of live_set view/);
        assert.deepEqual(sim.writes, []);
    });
});

// Reply ports ------------------------------------------------------------------------------------

function replyPort(dev) {
    const ping = dev.sent.find((m) => m.address === "/bridge/ping");
    return ping.args[ping.args.indexOf("reply_port") + 1];
}

test("each device instance has its own reply port, outside the ephemeral range", {skip}, async () => {
    // Live ids this large put the old 40000 + (id mod 20000) scheme inside 49152-65535.
    const sim = liveSet({firstId: 39150});
    const ports = [];
    for (const name of ["MB Generate.amxd", "MB Generate.amxd", "MB Generate Tool.amxd"]) {
        sim.placeDevice(0);
        await withDevice(name, {sim}, async (dev) => {
            assert.match(await dev.settle(), READY);
            ports.push(replyPort(dev));
        });
    }
    assert.equal(new Set(ports).size, 3, `ports: ${ports}`);
    for (const port of ports) {
        const {first, count} = TOOL_TABLE.reply_ports;
        assert.ok(port >= first && port < first + count && port < 32768, `port ${port}`);
    }
});

test("a reply port another program holds is detected, shown, and the next one used", {skip}, async () => {
    const sim = liveSet();
    const device = sim.placeDevice(0);
    const {first, count} = TOOL_TABLE.reply_ports;
    const taken = first + device.id % count;
    const other = await occupy(taken);
    try {
        await withDevice("MB Generate.amxd", {sim}, async (dev) => {
            assert.equal(await dev.settle(), `Ready: bridge running (replies on port ${taken + 1})`);
            assert.ok(dev.statuses.includes(`Reply port ${taken} did not open; trying ${taken + 1}`), dev.statuses.join(" | "));
            assert.ok(sim.console.some((line) => line.startsWith(`udpreceive: port ${taken}`)), sim.console.join(" | "));
        });
    } finally {
        other.release();
    }
});
