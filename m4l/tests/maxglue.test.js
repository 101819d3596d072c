// mb_device.js as Max runs it: a script with Max's globals (inlet, outlet, Task, Dict,
// LiveAPI, jsarguments, require by bare name), here stand-ins over the Live simulator, with
// the bridge's replies typed in by hand. Also checks every source file stays ES5 for `js`.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const {Sim} = require("./lom");

const SRC = path.join(__dirname, "..", "src");

function maxScript(sim, args) {
    const outlets = [];
    const named = [];
    let dicts = 0;
    const store = new Map();
    class Dict {
        constructor(name) {
            this.name = name || `u${++dicts}`;
            if (!store.has(this.name)) {
                store.set(this.name, {});
            }
        }
        parse(text) { store.set(this.name, JSON.parse(text)); }
        stringify() { return JSON.stringify(store.get(this.name)); }
    }
    class Task {
        constructor(fn) { this.fn = fn; }
        schedule(ms) { this.handle = setTimeout(() => this.fn(), ms); }
        cancel() { clearTimeout(this.handle); }
    }
    const context = vm.createContext({
        outlet: (n, ...rest) => outlets.push([n, ...rest.flat()]),
        require: (name) => require(path.join(SRC, `${name}.js`)),
        jsarguments: ["mb_device.js", ...args], LiveAPI: sim.LiveAPI, Task, Dict, JSON, setTimeout, clearTimeout,
        patcher: {getnamed: (name) => ({message: (...m) => named.push([name, ...m])})},
        inlet: 0, messagename: ""
    });
    vm.runInContext(fs.readFileSync(path.join(SRC, "mb_device.js"), "utf8"), context);
    const send = (inlet, fn, ...values) => {
        context.inlet = inlet;
        return context[fn](...values);
    };
    const osc = (address, ...values) => {
        context.inlet = 1;
        context.messagename = address;
        context.anything(...values);
    };
    return {context, outlets, named, store, send, osc, Dict};
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

test("the script declares the inlets and outlets build.py gives its box", () => {
    const {context} = maxScript(new Sim(), ["generate", "effect"]);
    const built = fs.readFileSync(path.join(__dirname, "..", "build.py"), "utf8");
    const [, ins, outs] = built.match(/"js": \((\d+), (\d+),/);
    assert.equal(context.inlets, Number(ins));
    assert.equal(context.outlets, Number(outs));
});

test("on load it opens its reply port, pings the bridge and shows the answer", async () => {
    const sim = new Sim();
    sim.addTrack();
    const device = sim.placeDevice(0);
    const max = maxScript(sim, ["generate", "effect"]);
    max.send(0, "control", "variations", 5);  // a saved value restored before the device starts
    max.send(0, "bang");
    const port = 40000 + device.id % 20000;
    assert.deepEqual(max.outlets[0], [2, "port", port]);
    const ping = max.outlets.find((o) => o[0] === 0);
    assert.deepEqual(ping, [0, "/bridge/ping", `mb${device.id}-1`, "reply_port", port, "timeout", 120]);
    max.osc("/bridge/pong", `mb${device.id}-1`);
    assert.deepEqual(max.outlets.at(-1), [1, "set", "Ready: bridge running"]);
    await tick();
});

test("Set A moves the saved number boxes to the selected clip", () => {
    const sim = new Sim();
    sim.addTrack();
    sim.addTrack();
    sim.placeDevice(0);
    sim.addClip(1, 2, {name: "A"});
    sim.select({track: 1, slot: 2});
    const max = maxScript(sim, ["interpolate", "effect"]);
    max.send(0, "bang");
    max.send(0, "control", "pick_a", 1);
    assert.deepEqual(max.named, [["a_track", "float", 2], ["a_slot", "float", 3]]);
});

test("a MIDI Tool bangs live.miditool.in and answers through live.miditool.out", async () => {
    const sim = new Sim();
    sim.addTrack();
    const device = sim.placeDevice(0);
    const max = maxScript(sim, ["groove", "transformation"]);
    max.send(0, "bang");
    max.send(0, "control", "run", 1);
    assert.deepEqual(max.outlets.at(-1), [3, "bang"]);
    const context = new max.Dict("ctx");
    context.parse(JSON.stringify({clip: {time_selection_start: 4, time_selection_end: 8}, scale: {scale_mode: 0}}));
    const notes = new max.Dict("in");
    notes.parse(JSON.stringify({notes: [{note_id: 3, pitch: 38, start_time: 5, duration: 0.5, velocity: 70}]}));
    max.send(3, "dictionary", "ctx");
    max.send(2, "dictionary", "in");
    const id = `mb${device.id}-2`;
    const header = max.outlets.find((o) => o[0] === 0 && o[1] === "/bridge/clip");
    assert.deepEqual(header.slice(1), ["/bridge/clip", id, 0, 1, 1, 1, 4, 120, 4, 4, ""]);
    max.osc("/bridge/ack", id);
    max.osc("/bridge/result", id, 0, 1, 1, 1, 4, 120, 4, 4, "");
    max.osc("/bridge/result_notes", id, 0, 0, 1, 38, 1, 0.5, 90, 0, 1, 0, 64);
    max.osc("/bridge/done", id, 1);
    await tick();
    const out = max.outlets.find((o) => o[0] === 4);
    assert.equal(out[1], "dictionary");
    assert.deepEqual(JSON.parse(new max.Dict(out[2]).stringify()).notes.map((n) => [n.pitch, n.start_time, n.velocity]),
                     [[38, 5, 90]]);
});

function code(text) {
    // The source without comments and string literals, so only real syntax is checked.
    return text.replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\/|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'/g, '""');
}

test("every device source file is ES5, as Max's js object requires", () => {
    const es6 = /\b(let|const|class|of)\s|=>|`|\.\.\.|\.(includes|find|findIndex|startsWith|endsWith|at|padStart|fill)\(|Object\.(assign|entries|values)|\bPromise\b/;
    for (const name of fs.readdirSync(SRC).filter((f) => f.endsWith(".js"))) {
        const lines = code(fs.readFileSync(path.join(SRC, name), "utf8")).split("\n");
        lines.forEach((line, i) => assert.doesNotMatch(line, es6, `${name}:${i + 1} is not ES5: ${line.trim()}`));
    }
});
