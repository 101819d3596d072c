// MagentaDuet: play along with magenta-bridge from sclang (docs/protocol.md, "Play along").
//
// Duet: play a phrase and pause; the bridge answers with its continuation. Follow: play, and each
// next bar of drums follows your last bar or two. Your notes are stamped with the beats of a
// TempoClock, and each answer note is scheduled on that clock at the beat the bridge gives, so
// answers play in time with the clock. A note you play during an answer stops it.
//
//   d = MagentaDuet("127.0.0.1", 9700, TempoClock(2), \duet);
//   d.start([\wait, 1, \length, 2], { "listening".postln });
//   d.noteOn(60, 90); ... d.noteOff(60);                  // e.g. from MIDIdef.noteOn / noteOff
//   d.noteAction = { |pitch, velocity, duration, answer| ... };   // default: the \default synth
//   d.noticeAction = { |text, answer| ... };   // what the bridge noticed (default: posted), once a session
//   d.stop;
//
// The bridge answers the port sclang sends from (57120), as for MagentaBridge.
MagentaDuet {
	var <addr, <clock, <mode, <id, <>noteAction, <>answerAction, <>noticeAction, <>errorAction;
	var startAction, funcs, answers, cuts;

	*new { |host = "127.0.0.1", port = 9700, clock, mode = \duet, id|
		^super.new.init(host, port, clock ? TempoClock.default, mode, id ? ("sc-" ++ mode))
	}

	init { |host, port, argClock, argMode, argId|
		addr = NetAddr(host, port);
		clock = argClock;
		mode = argMode.asSymbol;
		id = argId.asString;
		answers = IdentityDictionary.new;  // answer -> (chunks: Set, end: beat)
		cuts = IdentityDictionary.new;     // answer -> beat it stops at
		noteAction = { |pitch, velocity, duration|
			(instrument: \default, midinote: pitch, amp: velocity / 127 * 0.5, sustain: duration).play
		};
		noticeAction = { |text, answer| ("MagentaDuet %: answer %: %".format(id, answer, text)).postln };
		errorAction = { |code, text| ("MagentaDuet %: % %".format(id, code, text)).warn };
		funcs = [
			OSCFunc({ |msg| this.prAnswer(msg) }, '/bridge/duet/answer', addr),
			OSCFunc({ |msg| this.prCut(msg[2], msg[3]) }, '/bridge/duet/cut', addr),
			OSCFunc({ |msg| if(msg[1].asString == id) { noticeAction.value(msg[3].asString, msg[2]) } },
				'/bridge/duet/notice', addr),
			OSCFunc({ |msg| errorAction.value(msg[2].asString, msg[3].asString) }, '/bridge/duet/error', addr),
			OSCFunc({ |msg| startAction.value; startAction = nil }, '/bridge/done', addr, argTemplate: [id.asSymbol]),
			OSCFunc({ |msg| errorAction.value(msg[2].asString, msg[3].asString) }, '/bridge/error', addr,
				argTemplate: [id.asSymbol])
		];
	}

	// Open the session with [key, value, ...] parameters (`magenta-bridge duet --help` lists them);
	// the clock's tempo and beatsPerBar (in quarter notes) go with it. action: once it is open.
	start { |params, action|
		startAction = action;
		addr.sendMsg('/bridge/duet/start', id, \mode, mode, \tempo, (clock.tempo * 60).asFloat,
			\meter, "%/4".format(clock.beatsPerBar.asInteger), *(params ? []));
		addr.sendMsg('/bridge/duet/clock', id, clock.beats.asFloat, (clock.tempo * 60).asFloat, 1);
	}

	noteOn { |pitch, velocity = 100|
		var now = clock.beats;
		addr.sendMsg('/bridge/duet/note', id, now.asFloat, pitch.asInteger, velocity.asInteger);
		if(mode == \duet) {  // a note during an answer stops it at once (the bridge says so too)
			answers.keysValuesDo { |n, answer| if(answer[\end] > now) { this.prCut(n, now) } };
		};
	}

	noteOff { |pitch|
		addr.sendMsg('/bridge/duet/note', id, clock.beats.asFloat, pitch.asInteger, 0);
	}

	stop {
		addr.sendMsg('/bridge/duet/stop', id);
		funcs.do(_.free);
	}

	// /bridge/duet/answer <id> <answer> <chunk> <n_chunks> <start> <length> (<pitch> <offset> <duration> <velocity>)*
	prAnswer { |msg|
		var n = msg[2], chunk = msg[3], start = msg[5].asFloat, notes = msg.copyToEnd(7).clump(4);
		var answer = answers[n] ?? { var fresh = (chunks: Set.new, end: start + msg[6]); answers[n] = fresh; fresh };
		if(msg[1].asString != id or: { answer[\chunks].includes(chunk) }) { ^this };  // a resend: played once
		answer[\chunks].add(chunk);
		notes.do { |note|
			var beat = start + note[1];
			clock.schedAbs(beat, {
				if(cuts[n].isNil or: { beat < cuts[n] }) { noteAction.value(note[0], note[3], note[2], n) };
				nil
			});
		};
		answerAction.value(n, start, notes);
	}

	prCut { |n, beat|
		cuts[n] = min(cuts[n] ? inf, beat);
	}
}
