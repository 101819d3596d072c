// Runs a device the way Max would, against the Live simulator and a real bridge server.
//
// Like Max, the device sends from one UDP socket (udpsend, an ephemeral port) and listens on
// another (udpreceive, the reply_port it announces). Replies are delivered with
// `sim.notifying` set, so a device that writes to Live straight from a reply fails the test;
// `defer` is setImmediate, standing in for Max's Task on the low-priority thread.
"use strict";

const dgram = require("node:dgram");
const path = require("node:path");
const osc = require("./osc");

const SRC = path.join(__dirname, "..", "src");
const {TOOL_TABLE} = require(path.join(SRC, "tooltable.js"));
const {BridgeClient} = require(path.join(SRC, "bridgeclient.js"));
const {LiveClip} = require(path.join(SRC, "liveclip.js"));
const {Device} = require(path.join(SRC, "devicecore.js"));

// Set by tests/test_m4l_js.py, which starts the server with a fake model store.
const BRIDGE_PORT = Number(process.env.MB_BRIDGE_PORT || 0);
const FINAL = /^(Done|Error|Bridge not running|Ready)/;

function bind(socket, port) {
    return new Promise((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(port, "127.0.0.1", () => resolve(socket.address().port));
    });
}

/**
 * A device on the simulator, talking to `bridgePort`.
 * options: tool, sim, kind ("effect"), bridgePort, drop(direction, address, args, count) ->
 * true to lose that datagram (to test resends), ackMs.
 */
async function startDevice({tool, sim, kind = "effect", bridgePort = BRIDGE_PORT, drop = () => false,
                            ackMs = 1500, miditool = null}) {
    const out = dgram.createSocket("udp4");
    const inbox = dgram.createSocket("udp4");
    await bind(out, 0);
    const replyPort = await bind(inbox, 0);
    const statuses = [];
    const sent = [];
    const waiters = [];
    const counts = new Map();
    const lose = (direction, address, args) => {
        const key = `${direction} ${address}`;
        counts.set(key, (counts.get(key) || 0) + 1);
        return drop(direction, address, args, counts.get(key));
    };
    const client = new BridgeClient({
        send(address, args) {
            sent.push({address, args});
            if (!lose("out", address, args)) {
                out.send(osc.encode(address, args), bridgePort, "127.0.0.1");
            }
        },
        timers: {start: (fn, ms) => setTimeout(fn, ms), stop: (handle) => clearTimeout(handle)},
        replyPort,
        prefix: "test",
        protocol: TOOL_TABLE.protocol,
        ackMs
    });
    const device = new Device({
        tool, kind, table: TOOL_TABLE, client, live: new LiveClip(sim.LiveAPI),
        status(text) {
            statuses.push(text);
            for (const waiter of waiters.splice(0)) {
                waiter();
            }
        },
        defer: (fn) => setImmediate(fn),
        miditool
    });
    inbox.on("message", (data) => {
        const {address, args} = osc.decode(data);
        if (lose("in", address, args)) {
            return;
        }
        sim.notifying = true;
        try {
            client.receive(address, args);
        } finally {
            sim.notifying = false;
        }
    });
    return {
        device, client, statuses, sent, replyPort,
        /** Resolve with the first final status (Done/Error/...) after `since` statuses. */
        async settle(since = 0, ms = 10000) {
            const deadline = Date.now() + ms;
            for (;;) {
                const final = statuses.slice(since).find((s) => FINAL.test(s));
                if (final) {
                    return final;
                }
                if (Date.now() > deadline) {
                    throw new Error(`no final status; got: ${statuses.join(" | ")}`);
                }
                await new Promise((resolve) => {
                    waiters.push(resolve);
                    setTimeout(resolve, 50);
                });
            }
        },
        /** Press Run and wait for the outcome. */
        async run() {
            const since = statuses.length;
            device.control("run", 1);
            return this.settle(since);
        },
        close() {
            out.close();
            inbox.close();
        }
    };
}

/** A port nothing listens on: bind a socket, note its port, close it. */
async function deadPort() {
    const socket = dgram.createSocket("udp4");
    const port = await bind(socket, 0);
    socket.close();
    return port;
}

module.exports = {startDevice, deadPort, BRIDGE_PORT, TOOL_TABLE, SRC};
