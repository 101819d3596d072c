// Opens a built device the way Live would (maxsim.js over lom.js) and talks to a real bridge.
//
// tests/test_m4l_js.py starts the bridge with a fake model and passes its port as
// MB_BRIDGE_PORT; the devices' `udpsend 127.0.0.1 9700` is pointed there. MB_M4L_DIR runs the
// same tests against other builds (e.g. the devices as they were before a change): the .amxd
// files are read from it, and its src/ folder is on the search path, as a developer's would be.
"use strict";

const dgram = require("node:dgram");
const path = require("node:path");
const {MaxDevice} = require("./maxsim");

const M4L = process.env.MB_M4L_DIR || path.join(__dirname, "..");
const SEARCH_PATH = process.env.MB_M4L_DIR ? [path.join(M4L, "src")] : [];
const BRIDGE_PORT = Number(process.env.MB_BRIDGE_PORT || 0);
const {TOOL_TABLE} = require(path.join(__dirname, "..", "src", "tooltable.js"));
// A status that ends an action.
const FINAL = /^(Done|Error|Bridge not running|Ready|Cancelled|Clip [AB]:)/;

/**
 * Load `name` (e.g. "MB Generate.amxd") into `sim` (and `view`, for a MIDI Tool) and bang it.
 * options: bridgePort, drop(direction, address, args, count) -> true to lose that datagram,
 * searchPath (default: none, as on a fresh machine), saved (parameter values to restore).
 * `device.sent` lists every datagram the device sent, as {address, args}.
 */
function openDevice(name, {sim, view = null, bridgePort = BRIDGE_PORT, drop = null, searchPath = SEARCH_PATH,
                           saved = {}} = {}) {
    const sent = [];
    const network = {drop(direction, address, args, count) {
        if (direction === "out") {
            sent.push({address, args});
        }
        return drop ? drop(direction, address, args, count) : false;
    }};
    const device = new MaxDevice({file: path.join(M4L, name), sim, view, searchPath, ports: {9700: bridgePort},
                                  network});
    device.sent = sent;
    device.load(saved);
    device.settle = (since = 0, ms = 10000) => device.until(FINAL, since, ms);
    /** Press Run and wait for the outcome. */
    device.run = () => {
        const since = device.statuses.length;
        device.click("run");
        return device.settle(since);
    };
    return device;
}

/** Run `body(device)` on an opened device, closing its sockets whatever happens. */
async function withDevice(name, options, body) {
    const device = openDevice(name, options);
    try {
        await body(device);
    } finally {
        device.close();
    }
}

function bind(socket, port) {
    return new Promise((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(port, "127.0.0.1", () => resolve(socket.address().port));
    });
}

/** A port nothing listens on: bind a socket, note its port, close it. */
async function deadPort() {
    const socket = dgram.createSocket("udp4");
    const port = await bind(socket, 0);
    socket.close();
    return port;
}

/** Hold `port` with another socket (another program), until `release()`. */
async function occupy(port) {
    const socket = dgram.createSocket("udp4");
    await bind(socket, port);
    return {release: () => socket.close()};
}

module.exports = {openDevice, withDevice, deadPort, occupy, BRIDGE_PORT, TOOL_TABLE, M4L};
