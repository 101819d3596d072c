// A small OSC 1.0 message codec for the tests: types i, f and s only, like the bridge.
//
// encode() types numbers the way Max's udpsend does for a js outlet: a whole number becomes
// an int32 (`i`), anything else a float32 (`f`). The device therefore sends 1 for a
// temperature of 1.0 and the server must accept it, as it will from Max.
"use strict";

function pad4(n) {
    return (n + 3) & ~3;
}

function encodeString(text) {
    const raw = Buffer.from(String(text), "utf8");
    const out = Buffer.alloc(pad4(raw.length + 1));
    raw.copy(out);
    return out;
}

function encode(address, args) {
    let tags = ",";
    const parts = [];
    for (const arg of args) {
        if (typeof arg === "number") {
            if (Number.isInteger(arg) && arg >= -2147483648 && arg <= 2147483647) {
                tags += "i";
                const b = Buffer.alloc(4);
                b.writeInt32BE(arg);
                parts.push(b);
            } else {
                tags += "f";
                const b = Buffer.alloc(4);
                b.writeFloatBE(arg);
                parts.push(b);
            }
        } else if (typeof arg === "string") {
            tags += "s";
            parts.push(encodeString(arg));
        } else {
            throw new TypeError(`cannot encode ${typeof arg} as OSC`);
        }
    }
    return Buffer.concat([encodeString(address), encodeString(tags), ...parts]);
}

function readString(buf, offset) {
    const end = buf.indexOf(0, offset);
    if (end < 0) {
        throw new Error("unterminated OSC string");
    }
    return [buf.toString("utf8", offset, end), pad4(end + 1)];
}

function decode(buf) {
    let [address, offset] = readString(buf, 0);
    let tags;
    [tags, offset] = readString(buf, offset);
    if (tags[0] !== ",") {
        throw new Error(`no type tags in message to ${address}`);
    }
    const args = [];
    for (const tag of tags.slice(1)) {
        if (tag === "i") {
            args.push(buf.readInt32BE(offset));
            offset += 4;
        } else if (tag === "f") {
            args.push(buf.readFloatBE(offset));
            offset += 4;
        } else if (tag === "s") {
            let text;
            [text, offset] = readString(buf, offset);
            args.push(text);
        } else {
            throw new Error(`unexpected OSC type ${tag} in message to ${address}`);
        }
    }
    return {address, args};
}

module.exports = {encode, decode};
