// The device side of the bridge's OSC protocol (docs/protocol.md, bridge/protocol.py).
//
// ES5 only. The transport and the timers are injected so the same code runs in Max (outlet
// to udpsend, messages from udpreceive, Task for timers) and under node (a dgram socket and
// setTimeout). Only numbers and short strings cross the transport: Max keeps every distinct
// string as a symbol forever, so nothing here sends or expects JSON.
//
//   transport.send(address, args)   args: numbers and strings
//   timers.start(fn, ms) -> handle, timers.stop(handle)
//   client.receive(address, args)   call with every message udpreceive delivers

var NO_SERVER = "Bridge not running: start it with magenta-bridge serve";
var NOTE_FIELDS = 8;

function BridgeClient(options) {
    this.send = options.send;
    this.timers = options.timers;
    this.replyPort = options.replyPort;
    this.prefix = options.prefix;  // request ids are prefix + counter, unique per device
    this.protocol = options.protocol;  // {prefix, chunk_notes} from the tool table
    this.ackMs = options.ackMs || 3000;
    this.timeoutS = options.timeoutS || 120;
    this.maxRetries = options.maxRetries === undefined ? 3 : options.maxRetries;
    this.counter = 0;
    this.request = null;
}

BridgeClient.prototype.address = function (name) {
    return this.protocol.prefix + name;
};

BridgeClient.prototype.busy = function () {
    // A pending ping does not count: a real request simply takes its place.
    return this.request !== null && this.request.tool !== "ping";
};

BridgeClient.prototype.nextId = function () {
    this.counter += 1;
    return this.prefix + "-" + this.counter;
};

function noteArgs(note) {
    return [note.pitch, note.start_time, note.duration, note.velocity, note.mute ? 1 : 0,
            note.probability, note.velocity_deviation, note.release_velocity];
}

BridgeClient.prototype.chunkCount = function (clip) {
    return Math.ceil(clip.notes.length / this.protocol.chunk_notes);
};

BridgeClient.prototype.headerArgs = function (id, clip, index, count) {
    var args = [id, index, count, clip.notes.length, this.chunkCount(clip), clip.length, clip.tempo,
                clip.numerator, clip.denominator, clip.name];
    if (clip.scale) {
        args.push(clip.scale.root, clip.scale.mode);
    }
    return args;
};

BridgeClient.prototype.chunkArgs = function (id, clip, index, chunk) {
    var size = this.protocol.chunk_notes;
    var args = [id, index, chunk, this.chunkCount(clip)];
    var notes = clip.notes.slice(chunk * size, (chunk + 1) * size);
    for (var i = 0; i < notes.length; i++) {
        args = args.concat(noteArgs(notes[i]));
    }
    return args;
};

BridgeClient.prototype.uploadPiece = function (req, index, chunk) {
    // chunk -1 is the clip's header, as in the server's missing_input tokens.
    var clip = req.clips[index];
    if (chunk < 0) {
        this.send(this.address("clip"), this.headerArgs(req.id, clip, index, req.clips.length));
    } else {
        this.send(this.address("notes"), this.chunkArgs(req.id, clip, index, chunk));
    }
};

BridgeClient.prototype.sendRequest = function (req) {
    var args = [req.id].concat(req.params, ["reply_port", this.replyPort, "timeout", this.timeoutS]);
    this.send(this.address(req.tool), args);
    this.arm(this.ackMs, function () { this.fail(req, "no_server", NO_SERVER); });
};

BridgeClient.prototype.arm = function (ms, fn) {
    var self = this;
    var req = this.request;
    this.disarm();
    req.timer = this.timers.start(function () {
        if (self.request === req) {
            req.timer = null;
            fn.call(self);
        }
    }, ms);
};

BridgeClient.prototype.disarm = function () {
    if (this.request && this.request.timer !== null) {
        this.timers.stop(this.request.timer);
        this.request.timer = null;
    }
};

BridgeClient.prototype.run = function (tool, clips, params, handlers, id) {
    // Upload the input clips, then ask for the tool. params: flat [key, value, ...] list.
    // handlers: progress(fraction, text), result(clips), error(code, text), and optionally
    // notice(text); exactly one of result and error is called. `id`: the request id when it must
    // be a given one (a Duet session's), else a new one.
    if (this.busy()) {
        throw new Error("a request is already running");
    }
    this.disarm();
    var req = {id: id || this.nextId(), tool: tool, clips: clips, params: params, handlers: handlers,
               retries: 0, timer: null, headers: {}, chunks: {}, resendRounds: 0, pendingResends: 0};
    this.request = req;
    for (var index = 0; index < clips.length; index++) {
        this.uploadPiece(req, index, -1);
        for (var chunk = 0; chunk < this.chunkCount(clips[index]); chunk++) {
            this.uploadPiece(req, index, chunk);
        }
    }
    this.sendRequest(req);
    return req.id;
};

BridgeClient.prototype.ping = function (handlers) {
    // Is the server there? handlers.result([]) on pong, handlers.error(...) after ackMs.
    return this.run("ping", [], [], handlers);
};

BridgeClient.prototype.cancel = function () {
    var req = this.request;
    if (req) {
        this.send(this.address("cancel"), [this.nextId(), req.id, "reply_port", this.replyPort]);
        this.fail(req, "cancelled", "Cancelled");
    }
};

BridgeClient.prototype.fail = function (req, code, text) {
    if (this.request !== req) {
        return;
    }
    this.disarm();
    this.request = null;
    req.handlers.error(code, text);
};

BridgeClient.prototype.succeed = function (req, clips) {
    this.disarm();
    this.request = null;
    req.handlers.result(clips);
};

BridgeClient.prototype.receive = function (address, args) {
    var req = this.request;
    if (!req || !args || String(args[0]) !== req.id) {
        return;  // a late reply to a request that already ended, or another client's
    }
    var name = address.indexOf(this.protocol.prefix) === 0 ? address.slice(this.protocol.prefix.length) : address;
    var handler = this.handlers[name];
    if (handler) {
        handler.call(this, req, args.slice(1));
    }
};

BridgeClient.prototype.expectMore = function (req) {
    // After the ack the server may take long (a model on a slow CPU); only silence counts.
    this.arm((this.timeoutS + 5) * 1000, function () {
        this.fail(req, "timeout", "The bridge stopped answering (no reply for " + (this.timeoutS + 5) + " s)");
    });
};

BridgeClient.prototype.handlers = {
    ack: function (req) {
        this.expectMore(req);
    },
    pong: function (req) {
        this.succeed(req, []);
    },
    progress: function (req, args) {
        this.expectMore(req);
        req.handlers.progress(Number(args[0]), args.length > 1 ? String(args[1]) : "");
    },
    notice: function (req, args) {
        // Something to know about the result (the top line of a chord clip was used...).
        this.expectMore(req);
        if (req.handlers.notice) {
            req.handlers.notice(String(args[0]));
        }
    },
    result: function (req, args) {
        this.expectMore(req);
        var header = {index: Number(args[0]), count: Number(args[1]), n_notes: Number(args[2]),
                      n_chunks: Number(args[3]), length: Number(args[4]), tempo: Number(args[5]),
                      numerator: Number(args[6]), denominator: Number(args[7]), name: String(args[8])};
        if (args.length >= 11) {
            header.scale = {root: Number(args[9]), mode: String(args[10])};
        }
        req.headers[header.index] = header;
    },
    result_notes: function (req, args) {
        this.expectMore(req);
        var notes = [];
        for (var i = 3; i + NOTE_FIELDS <= args.length; i += NOTE_FIELDS) {
            notes.push({pitch: Number(args[i]), start_time: Number(args[i + 1]), duration: Number(args[i + 2]),
                        velocity: Number(args[i + 3]), mute: Number(args[i + 4]), probability: Number(args[i + 5]),
                        velocity_deviation: Number(args[i + 6]), release_velocity: Number(args[i + 7])});
        }
        req.chunks[Number(args[0]) + ":" + Number(args[1])] = notes;
    },
    done: function (req, args) {
        if (req.tool === "ping") {
            return;  // the pong already ended it
        }
        var count = Number(args[0]);
        var missing = this.missing(req, count);
        if (!missing.length) {
            this.succeed(req, this.assemble(req, count));
            return;
        }
        // Lost datagrams: ask for every missing piece; each resend is answered by its own
        // done, so a new round starts only when the whole previous round has been answered.
        if (req.pendingResends > 0) {
            req.pendingResends -= 1;
            if (req.pendingResends > 0) {
                this.expectMore(req);
                return;
            }
        }
        if (req.resendRounds >= this.maxRetries) {
            this.fail(req, "lost", "Parts of the result were lost on the way (" + missing.length + " missing)");
            return;
        }
        req.resendRounds += 1;
        req.pendingResends = missing.length;
        this.expectMore(req);
        for (var i = 0; i < missing.length; i++) {
            this.send(this.address("resend"), [req.id, missing[i][0], missing[i][1], "reply_port", this.replyPort]);
        }
    },
    error: function (req, args) {
        var code = String(args[0]);
        var text = args.length > 1 ? args.slice(1).join(" ") : code;
        if (code === "missing_input" && req.retries < this.maxRetries) {
            // Some upload datagrams were lost: send those pieces again, then the request.
            req.retries += 1;
            var tokens = text.split(" ");
            for (var i = 0; i < tokens.length; i++) {
                var parts = tokens[i].split(":");
                if (parts.length === 2 && Number(parts[0]) < req.clips.length) {
                    this.uploadPiece(req, Number(parts[0]), parts[1] === "header" ? -1 : Number(parts[1]));
                }
            }
            this.sendRequest(req);
            return;
        }
        this.fail(req, code, text);
    }
};

BridgeClient.prototype.missing = function (req, count) {
    // [clip, chunk] pairs not yet received; chunk -1 is a header.
    var out = [];
    for (var index = 0; index < count; index++) {
        var header = req.headers[index];
        if (!header) {
            out.push([index, -1]);
            continue;
        }
        for (var chunk = 0; chunk < header.n_chunks; chunk++) {
            if (!req.chunks[index + ":" + chunk]) {
                out.push([index, chunk]);
            }
        }
    }
    return out;
};

BridgeClient.prototype.assemble = function (req, count) {
    var clips = [];
    for (var index = 0; index < count; index++) {
        var header = req.headers[index];
        var notes = [];
        for (var chunk = 0; chunk < header.n_chunks; chunk++) {
            notes = notes.concat(req.chunks[index + ":" + chunk]);
        }
        clips.push({name: header.name, length: header.length, tempo: header.tempo, numerator: header.numerator,
                    denominator: header.denominator, scale: header.scale || null, notes: notes});
    }
    return clips;
};

if (typeof exports !== "undefined") {
    exports.BridgeClient = BridgeClient;
    exports.NO_SERVER = NO_SERVER;
}
