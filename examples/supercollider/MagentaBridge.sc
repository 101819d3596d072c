// MagentaBridge: run magenta-bridge tools from sclang and play the results as patterns.
//
// A clip is an Event: (name:, length: beats, tempo: bpm, tsNum:, tsDen:, notes: [[pitch, start,
// duration, velocity, mute, probability, velocity_deviation, release_velocity], ...]); a note
// may stop after velocity (the rest default to 0, 1.0, 0.0, 64). Times are in beats.
//
// The bridge answers the socket that sent the request, and sclang sends from its own port, so
// replies come straight back here. Input clips go up as a header plus chunks of 30 notes, the
// result comes down the same way; what UDP loses is asked for again (`missing_input` on the
// way up, `resend` on the way down), as docs/protocol.md describes.
MagentaBridge {
	classvar <chunkNotes = 30;
	var <addr, <>timeout, <>retries, counter = 0, requests, replies;

	*new { |host = "127.0.0.1", port = 9700, timeout = 60, retries = 3|
		^super.new.init(host, port, timeout, retries)
	}

	init { |host, port, argTimeout, argRetries|
		addr = NetAddr(host, port);
		timeout = argTimeout;
		retries = argRetries;
		requests = IdentityDictionary.new;
		replies = [
			'/bridge/progress' -> { |r, msg| r[\progress].value(msg[2], msg[3].asString) },
			'/bridge/result' -> { |r, msg| r[\headers][msg[2]] = msg; this.prCheck(msg[1].asSymbol, r) },
			'/bridge/result_notes' -> { |r, msg|
				r[\chunks]["%:%".format(msg[2], msg[3])] = msg.copyToEnd(5);
				this.prCheck(msg[1].asSymbol, r)
			},
			'/bridge/done' -> { |r, msg| r[\nClips] = msg[2]; this.prCheck(msg[1].asSymbol, r) },
			'/bridge/error' -> { |r, msg| this.prError(msg[1].asSymbol, r, msg[2].asString, msg[3].asString) }
		].collect { |pair|
			OSCFunc({ |msg|
				var r = requests[msg[1].asSymbol];
				if(r.notNil) { r[\touched] = Main.elapsedTime; pair.value.value(r, msg) };
			}, pair.key, addr)
		};
	}

	free {
		replies.do(_.free);
		requests.clear;
	}

	// Run `tool` (\generate, \continue, \interpolate, \groove, \drumify) on input clips with
	// [key, value, ...] parameters. Calls action.(clips), errorAction.(code, text) or
	// progressAction.(fraction, text); returns the request id.
	run { |tool, clips, params, action, errorAction, progressAction|
		var id = "sc" ++ (counter = counter + 1);
		var uploads = Dictionary.new;
		var request = ["/bridge/" ++ tool, id] ++ (params ? []);
		clips = clips ? [];
		clips.do { |clip, i| uploads.putAll(this.prUploads(id, clip, i, clips.size)) };
		requests[id.asSymbol] = (
			uploads: uploads, request: request, retries: retries, headers: Dictionary.new,
			chunks: Dictionary.new, nClips: nil, touched: Main.elapsedTime, action: action,
			errorAction: errorAction ? { |code, text| ("MagentaBridge %: % %".format(id, code, text)).warn },
			progress: progressAction
		);
		uploads.do { |message| addr.sendMsg(*message) };
		addr.sendMsg(*request);
		this.prWatch(id.asSymbol);
		^id
	}

	// The clip as an Event pattern: one event per unmuted note, chords as zero-length steps,
	// a rest for any gap before the first note and after each note up to the next.
	*pattern { |clip, instrument = \default|
		var notes = (clip[\notes] ? []).reject { |n| (n[4] ? 0) != 0 }.sort { |a, b|
			(a[1] < b[1]) or: { (a[1] == b[1]) and: { a[0] <= b[0] } }
		};
		var lead = if(notes.isEmpty) { clip[\length] } { notes[0][1] };
		var head = if(lead > 0) { 1 } { 0 };
		var durs = notes.collect { |n, i|
			var next = if(i + 1 < notes.size) { notes[i + 1][1] } { clip[\length] };
			next - n[1]
		};
		^Pbind(
			\instrument, instrument,
			\midinote, Pseq((\rest ! head) ++ notes.collect { |n| n[0] }),
			\dur, Pseq((lead ! head) ++ durs),
			\sustain, Pseq((1 ! head) ++ notes.collect { |n| n[2] }),
			\amp, Pseq((0 ! head) ++ notes.collect { |n| (n[3] ? 100) / 127 * 0.5 })
		)
	}

	// Play a clip at its own tempo; needs a booted server (s.boot).
	*play { |clip, instrument = \default|
		^this.pattern(clip, instrument).play(TempoClock((clip[\tempo] ? 120) / 60))
	}

	*noteArgs { |n|
		^[n[0].asInteger, n[1].asFloat, n[2].asFloat, (n[3] ? 100).asInteger, (n[4] ? 0).asInteger,
			(n[5] ? 1.0).asFloat, (n[6] ? 0.0).asFloat, (n[7] ? 64).asInteger]
	}

	// "<clip>:header" and "<clip>:<chunk>" -> message, the tokens a missing_input error lists.
	prUploads { |id, clip, index, nClips|
		var notes = clip[\notes] ? [];
		var chunks = notes.clump(chunkNotes);
		var out = Dictionary.new;
		var header = ["/bridge/clip", id, index, nClips, notes.size, chunks.size, clip[\length].asFloat,
			(clip[\tempo] ? 120).asFloat, (clip[\tsNum] ? 4).asInteger, (clip[\tsDen] ? 4).asInteger,
			(clip[\name] ? "").asString];
		if(clip[\scaleRoot].notNil) { header = header ++ [clip[\scaleRoot].asInteger, clip[\scaleMode].asString] };
		out["%:header".format(index)] = header;
		chunks.do { |chunk, c|
			out["%:%".format(index, c)] = ["/bridge/notes", id, index, c, chunks.size]
				++ chunk.collect { |n| MagentaBridge.noteArgs(n) }.flatten;
		};
		^out
	}

	prMissing { |r|
		var missing = List.new;
		r[\nClips].do { |i|
			var header = r[\headers][i];
			if(header.isNil) { missing.add([i, -1]) } {
				header[5].do { |c| if(r[\chunks]["%:%".format(i, c)].isNil) { missing.add([i, c]) } }
			}
		};
		^missing
	}

	prCheck { |key, r|
		if(r[\nClips].notNil and: { this.prMissing(r).isEmpty }) {
			requests.removeAt(key);
			r[\action].value(r[\nClips].collect { |i| this.prClip(r, i) });
		}
	}

	prClip { |r, i|
		var h = r[\headers][i];
		var notes = h[5].collect { |c| r[\chunks]["%:%".format(i, c)].clump(8) }.flatten(1);
		^(name: h[10].asString, length: h[6], tempo: h[7], tsNum: h[8], tsDen: h[9],
			scaleRoot: h[11], scaleMode: h[12] !? { |m| m.asString }, notes: notes)
	}

	prError { |key, r, code, text|
		if(code == "missing_input" and: { r[\retries] > 0 }) {
			r[\retries] = r[\retries] - 1;
			text.split($ ).do { |token| r[\uploads][token] !? { |message| addr.sendMsg(*message) } };
			addr.sendMsg(*r[\request]);
		} {
			requests.removeAt(key);
			r[\errorAction].value(code, text);
		}
	}

	// Every half second: ask again for result chunks still missing after `done`, or give up
	// after `timeout` seconds of silence.
	prWatch { |key|
		SystemClock.sched(0.5, {
			var r = requests[key];
			if(r.notNil) {
				case
				{ r[\nClips].notNil and: { r[\retries] > 0 } } {
					r[\retries] = r[\retries] - 1;
					this.prMissing(r).do { |m| addr.sendMsg("/bridge/resend", key.asString, m[0], m[1]) };
				}
				{ Main.elapsedTime - r[\touched] > timeout or: { r[\nClips].notNil } } {
					requests.removeAt(key);
					r[\errorAction].value("no_reply", "no complete reply within % s".format(timeout));
				};
			};
			if(requests[key].notNil) { 0.5 } { nil }
		});
	}
}
