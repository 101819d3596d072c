// bridgeclient.js on its own: what it sends, and how it ends a request when replies stop.
// Timers are driven by hand, so timeouts are tested without waiting.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {BridgeClient, NO_SERVER} = require("../src/bridgeclient.js");
const {TOOL_TABLE} = require("../src/tooltable.js");

function client() {
    const sent = [];
    const timers = [];
    const outcome = [];
    const c = new BridgeClient({
        send: (address, args) => sent.push([address, ...args]),
        timers: {start: (fn, ms) => { timers.push({fn, ms, live: true}); return timers.length - 1; },
                 stop: (handle) => { timers[handle].live = false; }},
        replyPort: 9800, prefix: "t", protocol: TOOL_TABLE.protocol, timeoutS: 30
    });
    const handlers = {progress: (f, text) => outcome.push(["progress", f, text]),
                      result: (clips) => outcome.push(["result", clips]),
                      error: (code, text) => outcome.push(["error", code, text])};
    const fire = () => {
        const timer = timers.filter((t) => t.live).at(-1);
        timer.live = false;
        timer.fn();
        return timer.ms;
    };
    return {c, sent, outcome, handlers, fire};
}

const CLIP = {name: "Riff", length: 8, tempo: 100, numerator: 7, denominator: 8, scale: {root: 9, mode: "minor"},
              notes: Array.from({length: 31}, (_, i) => ({pitch: 40 + i, start_time: i / 4, duration: 0.25, velocity: 99,
                                                         mute: i === 3, probability: 1, velocity_deviation: 0,
                                                         release_velocity: 64}))};

test("a request uploads header and 30-note chunks, then asks with reply_port and timeout", () => {
    const {c, sent, handlers} = client();
    c.run("continue", [CLIP], ["variations", 2], handlers);
    assert.deepEqual(sent[0], ["/bridge/clip", "t-1", 0, 1, 31, 2, 8, 100, 7, 8, "Riff", 9, "minor"]);
    assert.equal(sent[1].length, 1 + 4 + 30 * 8);
    assert.deepEqual(sent[1].slice(0, 5 + 8), ["/bridge/notes", "t-1", 0, 0, 2, 40, 0, 0.25, 99, 0, 1, 0, 64]);
    assert.deepEqual(sent[1].slice(5 + 3 * 8, 5 + 4 * 8)[4], 1, "mute travels as 1");
    assert.deepEqual(sent[2], ["/bridge/notes", "t-1", 0, 1, 2, 70, 7.5, 0.25, 99, 0, 1, 0, 64]);
    assert.deepEqual(sent[3], ["/bridge/continue", "t-1", "variations", 2, "reply_port", 9800, "timeout", 30]);
});

test("no ack in time means the server is not running", () => {
    const {c, outcome, handlers, fire} = client();
    c.run("generate", [], [], handlers);
    assert.equal(fire(), 3000);
    assert.deepEqual(outcome, [["error", "no_server", NO_SERVER]]);
    assert.equal(c.busy(), false);
});

test("after the ack only silence longer than the request timeout ends it; progress keeps it alive", () => {
    const {c, outcome, handlers, fire} = client();
    c.run("generate", [], [], handlers);
    c.receive("/bridge/ack", ["t-1"]);
    c.receive("/bridge/progress", ["t-1", 0.5, "half"]);
    c.receive("/bridge/progress", ["t-2", 0.9, "someone else's"]);
    assert.deepEqual(outcome, [["progress", 0.5, "half"]]);
    assert.equal(fire(), 35000);
    assert.equal(outcome.at(-1)[1], "timeout");
});

test("pressing run again cancels the running request on the server too", () => {
    const {c, sent, outcome, handlers} = client();
    c.run("generate", [], [], handlers);
    c.cancel();
    assert.deepEqual(sent.at(-1), ["/bridge/cancel", "t-2", "t-1", "reply_port", 9800]);
    assert.deepEqual(outcome, [["error", "cancelled", "Cancelled"]]);
    c.receive("/bridge/done", ["t-1", 0]);  // a late reply changes nothing
    assert.equal(outcome.length, 1);
});

test("a result with a chunk that never arrives ends as lost after the resend rounds", () => {
    const {c, sent, outcome, handlers} = client();
    c.run("generate", [], [], handlers);
    c.receive("/bridge/result", ["t-1", 0, 1, 40, 2, 8, 120, 4, 4, "x"]);
    // The first done starts a round of 2 resends; each resend is answered by its own done.
    for (let done = 0; done < 1 + 3 * 2; done++) {
        assert.equal(outcome.length, 0);
        c.receive("/bridge/done", ["t-1", 1]);
    }
    assert.equal(sent.filter((m) => m[0] === "/bridge/resend").length, 3 * 2);
    assert.equal(outcome.at(-1)[1], "lost");
});

test("an error after whole clips of a result ends the request with no clips: a result counts at done", () => {
    // The bridge checks each result clip's notes just before sending it (docs/protocol.md).
    const {c, outcome, handlers} = client();
    c.run("generate", [], [], handlers);
    c.receive("/bridge/ack", ["t-1"]);
    c.receive("/bridge/result", ["t-1", 0, 2, 1, 1, 8, 120, 4, 4, "one"]);
    c.receive("/bridge/result_notes", ["t-1", 0, 0, 1, 60, 0, 0.5, 100, 0, 1, 0, 64]);
    c.receive("/bridge/error", ["t-1", "bad_clip", "note 5: start must be a finite number, got nan"]);
    assert.deepEqual(outcome, [["error", "bad_clip", "note 5: start must be a finite number, got nan"]]);
    assert.equal(c.busy(), false);
    c.receive("/bridge/done", ["t-1", 2]);  // a stray done changes nothing
    assert.equal(outcome.length, 1);
});

test("a ping is replaced by a real request instead of blocking it", () => {
    const {c, outcome, handlers} = client();
    c.ping(handlers);
    assert.equal(c.busy(), false);
    c.run("generate", [], [], handlers);
    c.receive("/bridge/pong", ["t-1"]);
    assert.deepEqual(outcome, []);
    assert.equal(c.busy(), true);
});
