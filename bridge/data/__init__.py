"""Training data: MIDI folder -> examples (per the model's converter) -> cached `.npz` splits."""
