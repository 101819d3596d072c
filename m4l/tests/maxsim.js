// Max, as the device tests see it: loads a built .amxd the way Max for Live does and runs its
// patcher, object by object, over the Live simulator (lom.js) and real UDP sockets. Each
// behaviour names its public source:
//
// - The .amxd container: `ampf` + device type, `meta`, `ptch`; a frozen device's `ptch` is an
//   `mx@c` block with the patcher, the files and a `dlst` directory (layout measured on
//   h1data/M4L-MIDI-tool-examples, retrigger-transform/Retrigger.amxd). A `js` object finds
//   its file (and the modules it requires) inside the frozen device, else on the search path;
//   a file found in neither fails to load, as Max says in its console (Cycling '74, "Freezing a
//   Max for Live device": an unfrozen device carries only its patcher).
// - Live integer parameters hold at most 256 values (Cycling '74, Max for Live parameters: "the
//   native integer representation is limited to a range of 0-255"): a device with a wider one is
//   refused here, so a build that makes one fails loudly.
// - live.text in button mode sends `bang`, in toggle mode 0/1 (Cycling '74 live.text reference).
// - Outlets fire right to left (Max: message ordering), so live.miditool.in's context comes
//   before its notes.
// - textedit outputmode 1 sends its text as one symbol; otherwise the text is parsed as a Max
//   message, where a comma ends a message (so "36,38" leaves as two messages).
// - udpreceive binds its port on a "port" message; a port it cannot bind is reported only in
//   the Max console, and nothing arrives (see max-for-live-reality.md: not confirmed from a
//   primary source). udpsend sends OSC to its host and port, changed by "host"/"port" messages.
// - deferlow passes a message on later, on the low-priority queue; Task runs later too.
// - Live restores the saved (or initial) value of every parameter when the device loads, then
//   live.thisdevice bangs once the Live API is ready (LOM reference: no LiveAPI before that).
// - Two threads (Cycling '74, "Scheduler and Priority"): MIDI input and timing objects run on the
//   high-priority scheduler, at the event's own time; `js` runs on the low-priority thread and
//   defers what reaches it from the scheduler (Cycling '74, "JavaScript and Threading"), to the
//   next service of the low-priority queue, LOW_PRIORITY_MS later (the default Event Interval,
//   Cycling '74 "Advanced Scheduler Settings"). A scheduler event here carries its transport time
//   (`device.logical`), which is what `when` reports and `midiout` is stamped with.
// - Max's transport follows Live's (lom.js `sim.transport`). `when` outputs the time in
//   bars/beats/units, and in ticks (480 a quarter note) out of its right outlet first (outlets fire
//   right to left); `timepoint` takes a time in ticks and bangs, on the scheduler, when the running
//   transport moves forward to it, never for a time already passed (Cycling '74 references).
// - midiin outputs the raw bytes it gets one by one; midiparse turns them into "pitch velocity" for
//   a note on or off (a note-off as velocity 0); midiformat turns "pitch velocity" into the bytes
//   of a note-on on channel 1; midiout sends bytes on (Cycling '74 references). `device.midiOut`
//   holds every message that left, with the transport time it left at.
// - `t l b` sends a bang, then the message, right to left; `zl reg` stores a list in its right
//   inlet and sends it on a bang; `zl iter 2` sends a list two at a time; `route` sends the rest of
//   a message out of the outlet of the argument its first element matches, else out of the last.
"use strict";

const dgram = require("node:dgram");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const {performance} = require("node:perf_hooks");
const osc = require("./osc");

const LIVE_INT_VALUES = 256;
const TICKS = 480;  // Max's ticks per quarter note
const LOW_PRIORITY_MS = 2;

/** The parts of an .amxd: device type, meta value, patcher, and the embedded files by name. */
function readAmxd(data) {
    const tag = (at) => data.toString("latin1", at, at + 4);
    if (tag(0) !== "ampf" || tag(12) !== "meta" || tag(24) !== "ptch") {
        throw new Error("not an .amxd: expected ampf, meta and ptch chunks");
    }
    const type = tag(8);
    const meta = data.readUInt32LE(20);
    const payload = data.subarray(32, 32 + data.readUInt32LE(28));
    const files = new Map();
    if (payload.toString("latin1", 0, 4) !== "mx@c") {
        return {type, meta, frozen: false, patcher: JSON.parse(payload.toString("utf8").replace(/\0$/, "")), files};
    }
    const directory = payload.readUInt32BE(12);
    if (payload.toString("latin1", directory, directory + 4) !== "dlst") {
        throw new Error("frozen device without a dlst directory");
    }
    let patcher = null;
    const end = directory + payload.readUInt32BE(directory + 4);
    for (let at = directory + 8; at < end; at += payload.readUInt32BE(at + 4)) {
        const fields = {};
        const entryEnd = at + payload.readUInt32BE(at + 4);
        for (let f = at + 8; f < entryEnd; f += payload.readUInt32BE(f + 4)) {
            fields[payload.toString("latin1", f, f + 4)] = payload.subarray(f + 8, f + payload.readUInt32BE(f + 4));
        }
        const name = fields.fnam.toString("utf8").replace(/\0+$/, "");
        const body = payload.subarray(fields.of32.readUInt32BE(0), fields.of32.readUInt32BE(0) + fields.sz32.readUInt32BE(0));
        if (fields.type.toString("latin1") === "JSON") {
            patcher = JSON.parse(body.toString("utf8").replace(/\0$/, ""));
        } else {
            files.set(name, body);
        }
    }
    return {type, meta, frozen: true, patcher, files};
}

/** A message as Max atoms: numbers stay numbers, words become strings. */
function atoms(text) {
    return String(text).trim().split(/\s+/).filter((w) => w !== "").map((w) => (isNaN(Number(w)) ? w : Number(w)));
}

class MaxDevice {
    /**
     * options: file (an .amxd), sim (lom.Sim), view (lom.ClipView, MIDI Tools), searchPath
     * (folders), ports ({9700: real port}: where udpsend's configured ports really go),
     * network ({drop(direction, address, args, count) -> true to lose a datagram}).
     */
    constructor({file, sim, view = null, searchPath = [], ports = {}, network = {}}) {
        this.name = path.basename(file);
        this.amxd = readAmxd(fs.readFileSync(file));
        this.sim = sim;
        this.view = view;
        this.searchPath = searchPath;
        this.ports = ports;
        this.network = network;
        this.console = sim.console;
        this.dicts = new Map();
        this.sockets = [];
        this.timers = new Set();
        this.closed = false;
        this.statuses = [];
        this.waiters = [];
        this.counts = new Map();
        this.boxes = new Map();
        this.named = new Map();
        this.wires = new Map();
        this.logical = null;  // the transport time (ticks) of the scheduler event being handled
        this.midiInputs = [];
        this.timepoints = [];
        this.midiOut = [];
        sim.transport.listeners.add(this);
        for (const {box} of this.amxd.patcher.patcher.boxes) {
            this.checkParameter(box);
        }
        for (const {box} of this.amxd.patcher.patcher.boxes) {
            const object = this.create(box);
            this.boxes.set(box.id, object);
            if (box.varname) {
                this.named.set(box.varname, object);
            }
        }
        for (const {patchline} of this.amxd.patcher.patcher.lines) {
            const key = patchline.source.join(":");
            this.wires.set(key, (this.wires.get(key) || []).concat([patchline.destination]));
        }
    }

    checkParameter(box) {
        const value = box.saved_attribute_attributes && box.saved_attribute_attributes.valueof;
        if (!box.parameter_enable || !value || value.parameter_type !== 1) {
            return;
        }
        const count = (value.parameter_mmax || 0) - (value.parameter_mmin || 0) + 1;
        if (count > LIVE_INT_VALUES) {
            throw new Error(`${this.name}: integer parameter ${value.parameter_longname} has ${count} values; ` +
                            `Live holds at most ${LIVE_INT_VALUES}`);
        }
    }

    create(box) {
        const words = box.maxclass === "newobj" ? atoms(box.text) : [box.maxclass];
        const make = CLASSES[words[0]];
        if (!make) {
            throw new Error(`${this.name}: the simulator has no object ${words[0]}`);
        }
        const object = make(this, box, words.slice(1));
        object.box = box;
        return object;
    }

    /** Send `message` (an array of atoms) out of `outlet` of `object`. */
    emit(object, outlet, message) {
        for (const [id, inlet] of this.wires.get(`${object.box.id}:${outlet}`) || []) {
            this.boxes.get(id).receive(inlet, message.slice());
        }
    }

    /** Live opens the device: parameters restored, then live.thisdevice bangs. */
    load(saved = {}) {
        for (const object of this.boxes.values()) {
            if (object.restore) {
                object.restore(saved[object.box.varname]);
            }
        }
        for (const object of this.boxes.values()) {
            if (object.box.text === "live.thisdevice") {
                this.emit(object, 0, ["bang"]);
            }
        }
        return this;
    }

    // What a person does -------------------------------------------------------------------------

    control(varname) {
        const object = this.named.get(varname);
        if (!object) {
            throw new Error(`${this.name} has no control ${varname}`);
        }
        return object;
    }

    click(varname) {
        this.control(varname).click();
    }

    set(varname, value) {
        this.control(varname).set(value);
        if (this.view && this.view.autoApply) {
            this.view.apply();  // Auto Apply: Live starts a pass when a tool's setting changes
        }
    }

    type(varname, text) {
        this.control(varname).type(text);
    }

    get status() {
        return this.statuses.length ? this.statuses[this.statuses.length - 1] : "";
    }

    showStatus(text) {
        this.statuses.push(text);
        for (const waiter of this.waiters.splice(0)) {
            waiter();
        }
    }

    /** Resolve with the first status after `since` that matches `pattern`. */
    async until(pattern, since = 0, ms = 10000) {
        const deadline = Date.now() + ms;
        for (;;) {
            const found = this.statuses.slice(since).find((s) => pattern.test(s));
            if (found) {
                return found;
            }
            if (Date.now() > deadline) {
                throw new Error(`no status matching ${pattern}; got: ${this.statuses.join(" | ")}`);
            }
            await new Promise((resolve) => {
                this.waiters.push(resolve);
                setTimeout(resolve, 50);
            });
        }
    }

    lose(direction, address, args) {
        const key = `${direction} ${address}`;
        this.counts.set(key, (this.counts.get(key) || 0) + 1);
        return this.network.drop ? this.network.drop(direction, address, args, this.counts.get(key)) : false;
    }

    /** Run `fn` after `ms` (Max's scheduler), unless the device is closed by then. */
    later(fn, ms) {
        const handle = setTimeout(() => {
            this.timers.delete(handle);
            if (!this.closed) {
                fn();
            }
        }, ms);
        this.timers.add(handle);
        return handle;
    }

    /** Ticks now: a scheduler event's own time, else the running transport's. */
    ticksNow() {
        return this.logical !== null ? this.logical : this.sim.transport.beat() * TICKS;
    }

    /** Run `fn` as a scheduler (high-priority) event at transport time `ticks`. */
    scheduled(ticks, fn) {
        const was = this.logical;
        this.logical = ticks;
        try {
            fn();
        } finally {
            this.logical = was;
        }
    }

    /** The track's MIDI reaches the device now: raw bytes, e.g. [0x90, 60, 100]. */
    midiIn(bytes) {
        this.scheduled(this.sim.transport.beat() * TICKS, () => {
            for (const input of this.midiInputs) {
                for (const byte of bytes) {
                    this.emit(input, 0, [byte]);
                }
            }
        });
    }

    transportChanged() {
        for (const timepoint of this.timepoints) {
            timepoint.arm();
        }
    }

    close() {
        this.sim.transport.listeners.delete(this);
        this.closed = true;
        for (const handle of this.timers) {
            clearTimeout(handle);
        }
        this.sockets.forEach(closeSocket);
    }
}

// Objects ------------------------------------------------------------------------------------

function closeSocket(socket) {
    try {
        socket.close();
    } catch (e) {
        // closed already (after a failed bind)
    }
}

function inert() {
    return {receive() {}};
}

function parameter(device, box, {output = (v) => [v]} = {}) {
    // A live.* control: a Live parameter. Values are clamped to its range; an int or enum
    // parameter holds whole numbers.
    const spec = box.saved_attribute_attributes.valueof;
    const whole = spec.parameter_type !== 0;
    const clamp = (v) => {
        const n = Math.min(spec.parameter_mmax, Math.max(spec.parameter_mmin, Number(v)));
        return whole ? Math.round(n) : n;
    };
    const object = {
        value: spec.parameter_initial ? spec.parameter_initial[0] : 0,
        set(v) {
            this.value = clamp(v);
            device.emit(this, 0, output(this.value));
        },
        restore(saved) {
            if (saved !== undefined || spec.parameter_initial_enable) {
                this.set(saved !== undefined ? saved : this.value);
            }
        },
        receive(inlet, message) {
            if (message[0] === "set") {
                this.value = clamp(message[1]);
            } else if (message[0] === "float" || message[0] === "int") {
                this.set(message[1]);
            } else if (typeof message[0] === "number") {
                this.set(message[0]);
            }
        }
    };
    return object;
}

function liveText(device, box) {
    // mode 0: button (click -> bang); mode 1 (the default): toggle (click -> 1 or 0).
    const object = parameter(device, box);
    const button = box.mode === 0;
    object.click = () => {
        if (button) {
            device.emit(object, 1, [box.text || ""]);
            device.emit(object, 0, ["bang"]);
        } else {
            object.set(object.value ? 0 : 1);
        }
    };
    if (button) {
        object.restore = () => {};  // a button has no value to restore
    }
    return object;
}

function textedit(device, box) {
    const object = {
        text: box.text || "",
        output() {
            if (box.outputmode === 1) {
                device.emit(object, 0, ["text", object.text]);
                return;
            }
            for (const part of object.text.split(",")) {  // a comma ends a Max message
                device.emit(object, 0, ["text", ...atoms(part)]);
            }
        },
        type(text) {
            object.text = text;
            if (box.keymode === 1) {
                object.output();  // Return enters the text
            }
        },
        restore(saved) {
            if (saved !== undefined) {
                object.text = saved;
            }
        },
        getvalueof() {
            return object.text;
        },
        receive(inlet, message) {
            if (message[0] === "bang") {
                object.output();
            } else if (message[0] === "set") {
                object.text = message.slice(1).join(" ");
            }
        }
    };
    return object;
}

function udpsend(device, box, args) {
    const socket = dgram.createSocket("udp4");
    device.sockets.push(socket);
    const object = {
        host: String(args[0]),
        port: Number(args[1]),
        receive(inlet, message) {
            if (message[0] === "host") {
                object.host = String(message[1]);
            } else if (message[0] === "port") {
                object.port = Number(message[1]);
            } else if (String(message[0]).startsWith("/")) {
                const [address, ...rest] = message;
                if (!device.closed && !device.lose("out", address, rest)) {
                    socket.send(osc.encode(address, rest), device.ports[object.port] || object.port, object.host);
                }
            } else {
                device.console.push(`udpsend: ${message[0]}: not an OSC address`);
            }
        }
    };
    return object;
}

function udpreceive(device, box, args) {
    const object = {
        socket: null,
        listen(port) {
            if (object.socket) {
                closeSocket(object.socket);
                object.socket = null;
            }
            const socket = dgram.createSocket("udp4");
            device.sockets.push(socket);
            socket.on("error", (error) => {
                device.console.push(`udpreceive: port ${port}: ${error.code}`);
                closeSocket(socket);
            });
            socket.on("message", (data) => {
                const {address, args: values} = osc.decode(data);
                if (!device.lose("in", address, values)) {
                    device.sim.notifying = true;  // delivered while Live may be notifying: no writes
                    try {
                        device.emit(object, 0, [address, ...values]);
                    } finally {
                        device.sim.notifying = false;
                    }
                }
            });
            socket.bind(port, "127.0.0.1");
            object.socket = socket;
        },
        receive(inlet, message) {
            if (message[0] === "port") {
                object.listen(Number(message[1]));
            }
        }
    };
    if (args.length) {
        object.listen(Number(args[0]));
    }
    return object;
}

function liveMiditoolIn(device) {
    let passes = 0;
    const object = {
        receive(inlet, message) {
            if (message[0] === "bang" && device.view) {
                device.view.apply();
            }
        }
    };
    if (device.view) {
        device.view.input = (context, notes) => {
            passes += 1;
            device.dicts.set(`miditool-context-${passes}`, context);
            device.dicts.set(`miditool-notes-${passes}`, notes);
            device.emit(object, 1, ["dictionary", `miditool-context-${passes}`]);
            device.emit(object, 0, ["dictionary", `miditool-notes-${passes}`]);
        };
    }
    return object;
}

function liveMiditoolOut(device) {
    return {
        receive(inlet, message) {
            if (!device.view) {
                return;
            }
            const dict = message[0] === "dictionary" ? device.dicts.get(String(message[1])) : undefined;
            device.view.answer(dict === undefined ? undefined : JSON.parse(JSON.stringify(dict)));
        }
    };
}

function js(device, box, args) {
    // Max's js: the script and its require()d modules from the frozen device, else the search path.
    const filename = String(args[0]);
    const find = (name) => {
        if (device.amxd.files.has(name)) {
            return device.amxd.files.get(name).toString("utf8");
        }
        for (const folder of device.searchPath) {
            if (fs.existsSync(path.join(folder, name))) {
                return fs.readFileSync(path.join(folder, name), "utf8");
            }
        }
        return null;
    };
    const source = find(filename);
    if (source === null) {
        device.console.push(`js: can't find file ${filename}`);
        return inert();
    }
    const modules = new Map();
    const object = {};
    class Dict {
        constructor(name) {
            this.name = name || `u${device.dicts.size + 1}`;
            if (!device.dicts.has(this.name)) {
                device.dicts.set(this.name, {});
            }
        }
        parse(text) { device.dicts.set(this.name, JSON.parse(text)); }
        stringify() { return JSON.stringify(device.dicts.get(this.name)); }
    }
    class Task {
        constructor(fn) { this.fn = fn; }
        schedule(ms) { this.handle = device.later(() => this.fn(), ms || 0); }
        cancel() { clearTimeout(this.handle); }
    }
    const context = vm.createContext({
        Task, Dict, inlet: 0, messagename: "",
        jsarguments: [filename, ...args.slice(1)],
        post: (...text) => device.console.push(text.join(" ")),
        outlet: (n, ...rest) => device.emit(object, n, rest.flat()),
        patcher: {
            getnamed(name) {
                const target = device.named.get(name);
                return {message: (...message) => target.receive(0, message.flat()),
                        getvalueof: () => (target.getvalueof ? target.getvalueof() : target.value)};
            }
        },
        require(name) {
            const file = `${name}.js`;
            if (!modules.has(file)) {
                const text = find(file);
                if (text === null) {
                    throw new Error(`js: can't find module ${file}`);
                }
                const exports = {};
                modules.set(file, exports);
                vm.runInContext(`(function (exports) {\n${text}\n})`, context, {filename: file})(exports);
            }
            return modules.get(file);
        }
    });
    // LiveAPI answers with the script's own arrays and objects (as Max's does), so that
    // `instanceof Array` in the script sees them as arrays.
    const own = vm.runInContext("(function (v) { return v !== null && typeof v === 'object' ? " +
                                "JSON.parse(JSON.stringify(v)) : v; })", context);
    context.LiveAPI = class LiveAPI extends device.sim.LiveAPI {
        get(prop) { return own(super.get(prop)); }
        call(...args) { return own(super.call(...args)); }
    };
    vm.runInContext(source, context, {filename});
    const run = (inlet, message) => {
        const [selector, ...rest] = message;
        context.inlet = inlet;
        context.messagename = selector;
        if (typeof context[selector] === "function") {
            context[selector](...rest);
        } else if (typeof context.anything === "function") {
            context.anything(...rest);
        } else {
            device.console.push(`js: ${filename}: no function ${selector}`);
        }
    };
    object.receive = (inlet, message) => {
        if (device.logical !== null) {  // from the scheduler: js defers it to the low-priority thread
            device.later(() => run(inlet, message), LOW_PRIORITY_MS);
        } else {
            run(inlet, message);
        }
    };
    object.context = context;
    return object;
}

function midiin(device) {
    const object = {receive() {}};
    device.midiInputs.push(object);
    return object;
}

function isNote(status) {
    return (status & 0xE0) === 0x80;  // 0x8n note-off, 0x9n note-on
}

function midiout(device) {
    let bytes = [];
    return {receive(inlet, message) {
        const byte = Number(message[0]);
        bytes = byte >= 0x80 ? [byte] : bytes.concat([byte]);
        if (bytes.length === 3 && isNote(bytes[0])) {
            const [status, pitch, velocity] = bytes;
            device.midiOut.push({status, pitch, velocity, ticks: device.ticksNow(), wall: performance.now()});
            bytes = [];
        }
    }};
}

function midiparse(device) {
    let bytes = [];
    const object = {receive(inlet, message) {
        const byte = Number(message[0]);
        bytes = byte >= 0x80 ? [byte] : bytes.concat([byte]);
        if (bytes.length === 3 && isNote(bytes[0])) {
            device.emit(object, 0, [bytes[1], (bytes[0] & 0xF0) === 0x80 ? 0 : bytes[2]]);
            bytes = [];
        }
    }};
    return object;
}

function midiformat(device) {
    const object = {receive(inlet, message) {
        if (inlet === 0 && message.length === 2) {
            for (const byte of [0x90, Number(message[0]), Number(message[1])]) {
                device.emit(object, 0, [byte]);
            }
        }
    }};
    return object;
}

function when(device) {
    const object = {receive() {
        const ticks = device.ticksNow();
        const {signature_numerator: num, signature_denominator: den} = device.sim.song.props;
        const unit = TICKS * 4 / den;
        const bar = Math.floor(ticks / (unit * num));
        const inBar = ticks - bar * unit * num;
        device.emit(object, 1, [ticks]);
        device.emit(object, 0, [bar + 1, Math.floor(inBar / unit) + 1, inBar % unit]);
    }};
    return object;
}

function timepoint(device) {
    const transport = device.sim.transport;
    const object = {
        target: null,
        handle: null,
        arm() {
            clearTimeout(object.handle);
            object.handle = null;
            if (object.target === null || !transport.playing || device.closed) {
                return;
            }
            const wait = transport.wallAt(object.target / TICKS) - performance.now();
            if (wait >= 0) {
                object.handle = setTimeout(object.fire, wait);
            }
        },
        fire() {
            object.handle = null;
            if (!transport.playing || device.closed) {
                return;
            }
            const wait = transport.wallAt(object.target / TICKS) - performance.now();
            if (wait > 0) {  // node's timers count whole milliseconds: not there yet
                object.handle = setTimeout(object.fire, wait);
                return;
            }
            const at = object.target;
            object.target = null;  // passed: it bangs again only when set again
            device.scheduled(at, () => device.emit(object, 0, ["bang"]));
        },
        receive(inlet, message) {
            const value = Number(message[0] === "int" || message[0] === "float" ? message[1] : message[0]);
            if (!isNaN(value)) {
                // A time already passed never comes (the transport must move forward to it).
                object.target = value > device.ticksNow() ? value : null;
                object.arm();
            }
        }
    };
    device.timepoints.push(object);
    return object;
}

function trigger(device, box, args) {
    const object = {receive(inlet, message) {
        for (let i = args.length - 1; i >= 0; i--) {
            device.emit(object, i, args[i] === "b" ? ["bang"] : message);
        }
    }};
    return object;
}

function zl(device, box, args) {
    let stored = [];
    const object = {receive(inlet, message) {
        if (args[0] === "reg") {
            if (inlet === 1) {
                stored = message.slice();
            } else if (message[0] === "zlclear") {
                stored = [];
            } else if (message[0] === "bang") {
                if (stored.length) {
                    device.emit(object, 0, stored.slice());
                }
            } else {
                stored = message.slice();
                device.emit(object, 0, stored.slice());
            }
        } else if (args[0] === "iter") {
            for (let i = 0; i < message.length; i += args[1]) {
                device.emit(object, 0, message.slice(i, i + args[1]));
            }
        }
    }};
    return object;
}

const CLASSES = {
    "live.thisdevice": () => inert(),
    "live.numbox": (device, box) => parameter(device, box),
    "live.menu": (device, box) => parameter(device, box),
    "live.toggle": (device, box) => parameter(device, box),
    "live.text": liveText,
    "live.comment": () => inert(),
    comment: (device) => ({receive(inlet, message) {
        if (message[0] === "set") {
            device.showStatus(message.slice(1).join(" "));
        }
    }}),
    textedit,
    udpsend,
    udpreceive,
    deferlow: (device) => {
        const object = {receive(inlet, message) { device.later(() => device.emit(object, 0, message), 0); }};
        return object;
    },
    prepend: (device, box, args) => {
        const object = {receive(inlet, message) { device.emit(object, 0, [...args, ...message]); }};
        return object;
    },
    route: (device, box, args) => {
        const object = {receive(inlet, message) {
            const at = args.findIndex((a) => String(a) === String(message[0]));
            device.emit(object, at < 0 ? args.length : at, at < 0 ? message : message.slice(1));
        }};
        return object;
    },
    // pattr: only builds before the frozen devices used it (MB_M4L_DIR runs the tests on such a
    // build to show what they miss).
    pattr: (device) => {
        const object = {receive(inlet, message) { device.emit(object, 0, message); }};
        return object;
    },
    js,
    "live.miditool.in": liveMiditoolIn,
    "live.miditool.out": liveMiditoolOut,
    midiin,
    midiout,
    midiparse,
    midiformat,
    when,
    timepoint,
    t: trigger,
    zl
};

module.exports = {MaxDevice, readAmxd};
