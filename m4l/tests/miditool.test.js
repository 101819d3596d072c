// The Live 12 MIDI Tools, opened from their .amxd files into a simulated Clip View (lom.ClipView)
// against a real bridge server with the fake model of tests/test_m4l_js.py.
//
// Live takes a tool's answer only inside the apply pass it started; the bridge answers later.
// So every pass must be answered at once, and the bridge's result delivered by a new pass.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {Sim, ClipView} = require("./lom");
const {withDevice, BRIDGE_PORT} = require("./harness");
const {readAmxd} = require("./maxsim");
const {M4L} = require("./harness");
const fs = require("node:fs");
const path = require("node:path");

const skip = BRIDGE_PORT ? false : "MB_BRIDGE_PORT is not set: run through pytest tests/test_m4l_js.py";
const MAJOR = {scale_mode: 1, root_note: 0, scale_intervals: [0, 2, 4, 5, 7, 9, 11], scale_name: "Major"};
let nextId = 3000;

function liveSet() {
    const sim = new Sim({tempo: 100, firstId: (nextId += 100)});
    sim.placeTool();
    return sim;
}

function pitchesAt(view) {
    return view.notes.map((n) => [n.pitch, n.start_time]).sort((a, b) => a[1] - b[1] || a[0] - b[0]);
}

function requests(dev, tool) {
    return dev.sent.filter((m) => m.address === `/bridge/${tool}`).map((m) => m.args.slice(1));
}

function valueAfter(args, key) {
    return args[args.indexOf(key) + 1];
}

const MELODY = [{pitch: 60, start_time: 8, duration: 1, velocity: 80}, {pitch: 62, start_time: 9.5, duration: 0.5, velocity: 80}];

test("a Transformation answers every pass at once, then applies the bridge's result in a new pass", {skip}, async () => {
    const sim = liveSet();
    const view = new ClipView({kind: "transformation", notes: MELODY, selection: [8, 12], scale: MAJOR});
    await withDevice("MB Continue Tool.amxd", {sim, view}, async (dev) => {
        await dev.settle();
        view.apply();  // the user presses Apply
        assert.deepEqual(view.errors, [], "answered inside the pass");
        assert.deepEqual(pitchesAt(view), [[60, 8], [62, 9.5]], "the notes stay as they are meanwhile");
        assert.match(dev.status, /^Waiting for the bridge; the notes stay as they are/);
        assert.match(await dev.until(/^Done/), /^Done: 3 notes/);
        assert.deepEqual(pitchesAt(view), [[60, 8], [62, 9.5], [72, 12]], "primer kept, continuation after it");
        assert.deepEqual(view.errors, []);
        const [args] = requests(dev, "continue");
        assert.deepEqual([valueAfter(args, "variations"), valueAfter(args, "include_primer"), valueAfter(args, "seed")],
                         [1, 1, 0], "one result, the primer kept, a fixed seed");
        assert.deepEqual(sim.writes, [], "a MIDI Tool hands notes to Live, it does not write clips");
    });
});

test("the same input and settings are answered from the result, without asking again", {skip}, async () => {
    const sim = liveSet();
    const view = new ClipView({kind: "transformation", notes: MELODY, selection: [8, 12]});
    await withDevice("MB Continue Tool.amxd", {sim, view}, async (dev) => {
        await dev.settle();
        view.apply();
        await dev.until(/^Done/);
        const after = pitchesAt(view);
        view.apply();  // Apply again: same cycle, same notes, same settings
        assert.deepEqual(pitchesAt(view), after);
        assert.equal(requests(dev, "continue").length, 1);

        const since = dev.statuses.length;
        dev.set("temperature", 0.5);  // new settings: a new request
        await dev.until(/^Done/, since);
        assert.equal(requests(dev, "continue").length, 2);
        assert.equal(valueAfter(requests(dev, "continue")[1], "temperature"), 0.5);

        const again = dev.statuses.length;
        dev.click("run");  // Run asks again even for a known result
        await dev.until(/^Done/, again + 1);
        assert.equal(requests(dev, "continue").length, 3);
        assert.deepEqual(view.errors, []);
    });
});

test("passes while a request runs are answered and never throw; the last settings win", {skip}, async () => {
    const sim = liveSet();
    const view = new ClipView({kind: "transformation", notes: MELODY, selection: [8, 12]});
    await withDevice("MB Continue Tool.amxd", {sim, view}, async (dev) => {
        await dev.settle();
        view.apply();
        for (const length of [2, 3, 4]) {
            dev.set("length", length);  // Auto Apply: a pass at every change, the bridge still busy
        }
        await dev.until(/^Done/);
        assert.deepEqual(view.errors, []);
        assert.equal(valueAfter(requests(dev, "continue").at(-1), "length"), 4);
        assert.deepEqual(pitchesAt(view), [[60, 8], [62, 9.5], [72, 12]]);
    });
});

test("a Transformation returns the notes it was handed but did not change", {skip}, async () => {
    const sim = liveSet();
    const outside = [{pitch: 40, start_time: 0, duration: 1}, {pitch: 41, start_time: 14, duration: 1}];
    const view = new ClipView({kind: "transformation", notes: [...outside, ...MELODY], selection: [8, 12], handAll: true});
    await withDevice("MB Groove Tool.amxd", {sim, view}, async (dev) => {
        await dev.settle();
        view.apply();
        await dev.until(/^Done/);
        assert.deepEqual(pitchesAt(view), [[40, 0], [60, 8], [62, 9.5], [41, 14]]);
        assert.deepEqual(view.notes.filter((n) => n.pitch >= 60).map((n) => n.velocity), [90, 90], "grooved");
        assert.deepEqual(view.notes.filter((n) => n.pitch < 60).map((n) => n.velocity), [100, 100], "untouched");
    });
});

test("Drumify Tool is a Transformation: it gets the notes whose rhythm it follows", {skip}, async () => {
    const data = readAmxd(fs.readFileSync(path.join(M4L, "MB Drumify Tool.amxd")));
    assert.equal(data.type, "natt");
    const sim = liveSet();
    const view = new ClipView({kind: "transformation", notes: MELODY, selection: [8, 12]});
    await withDevice("MB Drumify Tool.amxd", {sim, view}, async (dev) => {
        await dev.settle();
        view.apply();
        await dev.until(/^Done/);
        assert.deepEqual(pitchesAt(view), [[36, 8], [36, 9.5]], "a kick on every note of the input");
        assert.deepEqual(view.errors, []);
    });
});

test("a Generator is handed no notes and fills the time selection", {skip}, async () => {
    const sim = liveSet();
    const view = new ClipView({kind: "generator", notes: [{pitch: 50, start_time: 0, duration: 1}, ...MELODY],
                               selection: [8, 12]});
    await withDevice("MB Generate Tool.amxd", {sim, view}, async (dev) => {
        await dev.settle();
        view.apply();
        assert.deepEqual(pitchesAt(view), [[50, 0]], "meanwhile the (empty) input stands in the selection");
        await dev.until(/^Done/);
        assert.deepEqual(pitchesAt(view), [[50, 0], [60, 8], [60, 9], [60, 10], [60, 11]]);
        const [args] = requests(dev, "generate");
        assert.equal(valueAfter(args, "bars"), 4);
        const header = dev.sent.find((m) => m.address === "/bridge/clip").args;
        assert.equal(header[3], 0, "no notes uploaded");
        assert.deepEqual(view.errors, []);
    });
});

test("a pass before the device has started is still answered", {skip}, () => {
    const sim = liveSet();
    const view = new ClipView({kind: "transformation", notes: MELODY, selection: [8, 12]});
    return withDevice("MB Groove Tool.amxd", {sim, view}, async () => {
        view.apply();  // Live's first pass can come while the reply port is still being opened
        assert.deepEqual(view.errors, []);
        assert.deepEqual(pitchesAt(view), [[60, 8], [62, 9.5]]);
    });
});
