"""Play along: Duet (the bridge answers your phrase) and Follow (drums that follow you, bar by bar).

The pieces, each in its own module, with data flowing one way:

  modes.py     the two modes and their parameters, declared once (as the tool table does for tools)
  clock.py     transport beats <-> wall-clock seconds, from the positions a client reports
  session.py   what a player did and what to answer: phrase ends, interrupts, Follow's bars (no I/O)
  answers.py   an answer made by the tool table's Continue or Drumify (never a copy of model code)
  runner.py    one session on an asyncio loop: timers on the transport, answers off the loop
  wire.py      the `/bridge/duet/...` OSC messages
  endpoint.py  the server's `/bridge/duet/...` handlers (the server calls them through one hook)
  client.py    a Python client of the stream: tests, the benchmark, scripts
  midi.py      `magenta-bridge duet` and `follow`: a MIDI keyboard in, a synth out, its own clock
"""
