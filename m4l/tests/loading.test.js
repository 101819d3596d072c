// Loading the built devices as Max would on a fresh machine, and the simulator's own refusals.
// No bridge needed.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const {Sim} = require("./lom");
const {MaxDevice, readAmxd} = require("./maxsim");
const {M4L} = require("./harness");
const {ReplyPort, PROBE_ADDRESS} = require("../src/replyport.js");

const DEVICES = fs.readdirSync(M4L).filter((name) => name.endsWith(".amxd")).sort();
const SRC = path.join(__dirname, "..", "src");
let nextId = 5000;

function open(file, searchPath = []) {
    const sim = new Sim({firstId: (nextId += 100)});
    sim.addTrack();
    sim.placeDevice(0);
    const device = new MaxDevice({file, sim, searchPath});
    return {sim, device};
}

/** An .amxd holding only `patcher`, as an unfrozen device is. */
function unfrozenCopy(patcher) {
    const json = Buffer.concat([Buffer.from(JSON.stringify(patcher) + "\n"), Buffer.from([0])]);
    const head = Buffer.alloc(32);
    head.write("ampf", 0, "latin1");
    head.writeUInt32LE(4, 4);
    head.write("mmmm", 8, "latin1");
    head.write("meta", 12, "latin1");
    head.writeUInt32LE(4, 16);
    head.write("ptch", 24, "latin1");
    head.writeUInt32LE(json.length, 28);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "mb-")), "Unfrozen.amxd");
    fs.writeFileSync(file, Buffer.concat([head, json]));
    return file;
}

test("every device loads from its file alone, with nothing on Max's search path", () => {
    assert.ok(DEVICES.length >= 9, `devices: ${DEVICES}`);
    for (const name of DEVICES) {
        const {sim, device} = open(path.join(M4L, name));
        try {
            device.load();
            assert.deepEqual(sim.console, [], `${name}: ${sim.console.join(" | ")}`);
            assert.equal(device.status, "Opening a reply port...", `${name}: its script runs`);
        } finally {
            device.close();
        }
    }
});

test("the simulator, like Max, fails to load a script that is neither in the device nor on the search path", () => {
    const {patcher} = readAmxd(fs.readFileSync(path.join(M4L, "MB Generate.amxd")));
    const file = unfrozenCopy(patcher);
    const bare = open(file);
    bare.device.load();
    assert.deepEqual(bare.sim.console, ["js: can't find file mb_device.js"]);
    assert.equal(bare.device.status, "", "nothing runs");
    bare.device.close();
    const developer = open(file, [SRC]);  // with m4l/src on the search path it loads
    developer.device.load();
    assert.equal(developer.device.status, "Opening a reply port...");
    developer.device.close();
});

test("the simulator refuses a device with an integer parameter of more than 256 values", () => {
    const {patcher} = readAmxd(fs.readFileSync(path.join(M4L, "MB Generate.amxd")));
    const seed = patcher.patcher.boxes.find(({box}) => box.varname === "seed").box.saved_attribute_attributes.valueof;
    assert.equal(seed.parameter_type, 0, "the seed is a float parameter");
    assert.equal(seed.parameter_unitstyle, 0, "shown as an integer");
    Object.assign(seed, {parameter_type: 1, parameter_mmin: 0, parameter_mmax: 256});
    assert.throws(() => open(unfrozenCopy(patcher), [SRC]), /MB Generate Seed has 257 values; Live holds at most 256/);
});

// Reply ports, with timers driven by hand ---------------------------------------------------

function finder({tries = 3} = {}) {
    const timers = [];
    const log = [];
    const ports = new ReplyPort({
        range: {first: 20000, count: 10000}, seed: 12345, token: "mb12345", tries,
        timers: {start: (fn, ms) => timers.push({fn, ms, live: true}) - 1, stop: (h) => { timers[h].live = false; }},
        listen: (port) => log.push(["listen", port]),
        probe: (port, address, args) => log.push(["probe", port, address, ...args]),
        retry: (port, next) => log.push(["retry", port, next])
    });
    const fire = (ms) => {
        for (const timer of timers.filter((t) => t.live && t.ms === ms)) {
            timer.live = false;
            timer.fn();
        }
    };
    return {ports, log, fire};
}

test("a reply port is used once the device's datagram to itself comes back", () => {
    const {ports, log, fire} = finder();
    const outcome = [];
    ports.choose((port, text) => outcome.push([port, text]));
    fire(20);
    assert.deepEqual(log, [["listen", 22345], ["probe", 22345, PROBE_ADDRESS, "mb12345-0"]]);
    assert.equal(ports.receive(PROBE_ADDRESS, ["mb99-0"]), true, "another device's probe is not a bridge reply");
    assert.deepEqual(outcome, []);
    assert.equal(ports.receive("/bridge/pong", ["x"]), false);
    ports.receive(PROBE_ADDRESS, ["mb12345-0"]);
    assert.deepEqual(outcome, [[22345, undefined]]);
});

test("a port whose datagram never comes back is given up for the next, and the last failure says so", () => {
    const {ports, log, fire} = finder({tries: 2});
    const outcome = [];
    ports.choose((port, text) => outcome.push([port, text]));
    fire(400);
    assert.deepEqual(log.at(-2), ["retry", 22345, 22346]);
    assert.deepEqual(log.at(-1), ["listen", 22346]);
    ports.receive(PROBE_ADDRESS, ["mb12345-0"]);  // too late for the first port
    assert.deepEqual(outcome, []);
    fire(400);
    assert.deepEqual(outcome, [[0, "No reply port could be opened (tried 2 from 22345 to 22346); see the Max console"]]);
});
