// The UDP port a device listens on for the bridge's replies, and proof that it is open.
//
// ES5 only. Each device instance starts from its own port, picked from its Live object id inside
// `range`, which lies below every OS's ephemeral range (Linux from 32768, macOS and Windows
// 49152-65535), so the OS never lends the port to some other socket. The device opens the port
// (udpreceive "port N") and sends a datagram to itself through a second udpsend. A port that
// another program or device already holds cannot be bound, and udpreceive reports that only in
// the Max console: the datagram then never comes back. After `probeMs` without it the next
// port is tried, and after `tries` ports the device gives up and says so.
//
//   new ReplyPort({range: {first, count}, seed, token, timers, listen(port),
//                  probe(port, address, args), retry(port, nextPort), probeMs, tries})
//   ports.choose(done)                done(port), or done(0, text) when no port could be opened
//   ports.receive(address, args)      true when the message was a probe (this device's or not)

var PROBE_ADDRESS = "/mb/probe";
// The datagram leaves a moment after the port is opened, and once more halfway, in case the
// open takes effect a little later than the message.
var PROBE_DELAY_MS = 20;

function ReplyPort(options) {
    this.first = options.range.first;
    this.count = options.range.count;
    this.seed = options.seed;
    this.token = options.token;
    this.timers = options.timers;
    this.listen = options.listen;
    this.probe = options.probe;
    this.retry = options.retry || function () {};
    this.probeMs = options.probeMs || 400;
    this.tries = options.tries || 8;
    this.attempt = 0;
    this.expected = null;
    this.pending = [];
    this.done = null;
    this.port = 0;
}

ReplyPort.prototype.portFor = function (attempt) {
    return this.first + (this.seed + attempt) % this.count;
};

ReplyPort.prototype.choose = function (done) {
    this.done = done;
    this.attempt = 0;
    this.open();
};

ReplyPort.prototype.open = function () {
    var self = this;
    var port = this.portFor(this.attempt);
    var token = this.token + "-" + this.attempt;
    var send = function () { self.probe(port, PROBE_ADDRESS, [token]); };
    this.stop();
    this.port = port;
    this.expected = token;
    this.listen(port);
    this.pending = [this.timers.start(send, PROBE_DELAY_MS),
                    this.timers.start(send, Math.round(this.probeMs / 2)),
                    this.timers.start(function () { self.next(); }, this.probeMs)];
};

ReplyPort.prototype.stop = function () {
    for (var i = 0; i < this.pending.length; i++) {
        this.timers.stop(this.pending[i]);
    }
    this.pending = [];
};

ReplyPort.prototype.next = function () {
    var taken = this.port;
    this.stop();
    this.expected = null;
    this.attempt += 1;
    if (this.attempt >= this.tries) {
        this.done(0, "No reply port could be opened (tried " + this.tries + " from " + this.portFor(0) +
                  " to " + taken + "); see the Max console");
        return;
    }
    this.retry(taken, this.portFor(this.attempt));
    this.open();
};

ReplyPort.prototype.receive = function (address, args) {
    if (address !== PROBE_ADDRESS) {
        return false;
    }
    if (this.expected !== null && args && String(args[0]) === this.expected) {
        this.stop();
        this.expected = null;
        this.done(this.port);
    }
    return true;  // another device's probe (one that shares the port) is not a bridge reply either
};

if (typeof exports !== "undefined") {
    exports.ReplyPort = ReplyPort;
    exports.PROBE_ADDRESS = PROBE_ADDRESS;
}
