"""Every trainable model, declared in one place: model class, data converter and hparams.

As Magenta's music_vae configs do, a name maps to everything needed to build the data, train
the model and serve it, so a new model is one entry here. Importing this module pulls in no
TensorFlow: the Keras side is looked up by `model_class` only when training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    name: str                  # config name, also the default bundle name
    model_class: str           # key in bridge.models.MODEL_CLASSES and the Keras families
    kind: str                  # "melody" or "drums": the `type` a tool asks for
    tools: tuple[str, ...]     # tools this model serves
    converter: str             # data converter name (bridge.data)
    converter_args: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    help: str = ""

    def with_hparams(self, overrides: dict[str, Any]) -> "ModelConfig":
        """A copy with hparams overridden (from `--hparams k=v,...`); unknown keys are refused."""
        unknown = sorted(set(overrides) - set(self.hparams))
        if unknown:
            raise ValueError(f"unknown hparam {unknown[0]!r} for {self.name}; known: {', '.join(sorted(self.hparams))}")
        return ModelConfig(self.name, self.model_class, self.kind, self.tools, self.converter,
                           dict(self.converter_args), {**self.hparams, **overrides}, self.help)


CONFIGS: dict[str, ModelConfig] = {}


def register(config: ModelConfig) -> ModelConfig:
    if config.name in CONFIGS:
        raise ValueError(f"config {config.name} registered twice")
    CONFIGS[config.name] = config
    return config


# GrooVAE (Groove MIDI Dataset), scaled down from Magenta's bi[512]/[256,256]/z256 to train on
# one CPU thread in about an hour and serve a 4-bar clip in a few tens of ms; free bits and beta
# as Magenta's groovae configs. Meter-aware: 48-step windows hold whole bars of 4/4, 3/4 and
# 6/8 on their grids, the decoder reads each step's bar position, and GMD's 4/4 grooves also
# give 3/4 and 6/8 performances (bridge.data.drum_meters).
_GROOVAE_DATA = {"meter": True, "window": 48, "hop": 16, "other_meters": True}
_GROOVAE_HPARAMS = {"enc_units": 192, "dec_units": [192, 192], "z_size": 96, "free_bits": 48.0, "beta": 0.2,
                    "dropout": 0.3, "meter": True, "window": 48,
                    "batch_size": 64, "learning_rate": 1e-3, "clip_norm": 1.0,
                    "eval_every": 500, "checkpoint_every": 500, "image_every": 2000,
                    "early_stop_patience": 6, "max_steps": 4000}
register(ModelConfig("groovae_humanize_2bar", "groovae", "drums", ("groove",), "groove", _GROOVAE_DATA,
                     {"mode": "humanize", **_GROOVAE_HPARAMS},
                     "GrooVAE humanize in the clip's meter: drum hits in, the drummer's timing and velocity out."))
# tap2drum's decoder also reads the tap at each step (`dec_inputs`): with the taps in z alone,
# the meter-aware model's hit F1 on GMD validation (0.470 at z = mean, 0.383 sampled at
# temperature 1) stayed below the train set's likely hits per bar position given the tap (0.453
# validation, 0.505 test).
register(ModelConfig("groovae_tap2drum_2bar", "groovae", "drums", ("drumify",), "groove", _GROOVAE_DATA,
                     {"mode": "tap", **_GROOVAE_HPARAMS, "tap_dropout": 0.3, "dec_inputs": True},
                     "GrooVAE tap2drum in the clip's meter: one rhythm channel in, a full drum performance out."))


# MelodyRNN / DrumsRNN, sized to train in under an hour on one shared CPU thread
# (Magenta: [128,128] basic_rnn, [256]x3 drum_kit); dropout is light since training is short.
# `meter`: lookbacks count bars of each clip's own meter and the inputs say where bars and
# beats fall (bridge.meter); off, the model hears every clip as 4/4 16ths (Magenta's counters).
EVENTS_RNN_HPARAMS = {
    "layers": 2, "units": 128, "dropout": 0.1, "lookback": 16, "counter_bits": 5, "meter": False,
    "batch_size": 64, "learning_rate": 2e-3, "clip_norm": 3.0, "max_steps": 6000,
    "eval_every": 500, "checkpoint_every": 250, "image_every": 1000, "early_stop_patience": 4,
}
_METER_RNN = {"lookback": 1, "counter_bits": 0, "meter": True}

register(ModelConfig(
    "melody_rnn", "events_rnn", "melody", ("continue",), "melody",
    {"track": "MELODY", "min_pitch": 48, "max_pitch": 84, "window": 97, "hop": 96, "transpositions": 2,
     "meter": True},
    {**EVENTS_RNN_HPARAMS, **_METER_RNN, "units": 256, "max_steps": 6000},
    "Lookback MelodyRNN in the clip's meter: top-line melody events (48-84) on the meter's grid, "
    "events 1 and 2 bars back, bar and beat positions. Train on folk songs and POP909 together.",
))
register(ModelConfig(
    "drums_rnn", "events_rnn", "drums", ("continue",), "drums",
    {"window": 97, "hop": 16, "meter": True, "other_meters": True},
    {**EVENTS_RNN_HPARAMS, **_METER_RNN, "units": 256, "max_steps": 5000},
    "DrumsRNN (drum_kit) in the clip's meter: 9 classes as a 512-way event on the meter's grid, "
    "events 1 and 2 bars back, bar and beat positions; GMD's 4/4 grooves also teach 3/4 and 6/8.",
))


# Polyphonic Continue (issue #17): note-on / note-off / time-shift events on each clip's meter
# grid (bridge.encodings.poly), trained on POP909's PIANO parts and the Bach chorales (S, A,
# T and B merged) together; every chorale window is also transposed into the other keys
# within a tritone, so that the 300 chorales are not drowned by 900 pop songs. [256, 256] at
# batch 32 ran 0.6-1.8 steps/s on one thread shared with up to three other trainings: 3000
# steps (half a pass over the 200k train windows) took 49 minutes. Eval reads the whole split
# (the first 1024 windows would be POP909's only).
register(ModelConfig(
    "poly_rnn", "poly_rnn", "poly", ("continue",), "poly",
    {"track": "PIANO", "min_pitch": 36, "max_pitch": 84, "max_shift": 16, "window_bars": 4, "hop_bars": 1,
     "max_events": 256, "transpositions": 2, "voices_transpositions": 11},
    {"layers": 2, "units": 256, "dropout": 0.1, "meter": True, "batch_size": 32, "learning_rate": 2e-3,
     "clip_norm": 3.0, "max_steps": 3000, "eval_every": 500, "checkpoint_every": 250, "eval_examples": 8192,
     "early_stop_patience": 4},
    "Polyphonic events RNN in the clip's meter: note-on, note-off and time-shift events (36-84) on "
    "the meter's grid, with the sounding pitches, bar and beat positions and the primer's "
    "pitch-class histogram as inputs.",
))


def _music_vae(name: str, kind: str, bars: int, data_args: dict[str, Any],
               tools: tuple[str, ...] = ("generate", "interpolate"), **hparams: Any) -> ModelConfig:
    """A MusicVAE entry: window length and pitch range are written once, into both the
    converter args (what the data is cut to) and the hparams (what serving reads)."""
    pitch = {"min_pitch": 48, "max_pitch": 95} if kind == "melody" else {}
    base = {"bars": bars, "steps_per_bar": 16, **pitch, "enc_units": 256, "dec_units": [256], "z_size": 64,
            "free_bits": 0.0, "max_beta": 0.2, "beta_rate": 0.999, "sampling_rate": 800.0, "dropout": 0.0,
            "dec_position": False,
            "batch_size": 128, "learning_rate": 1e-3, "clip_norm": 1.0, "eval_every": 250,
            "checkpoint_every": 250, "early_stop_patience": 6, "max_steps": 4000}
    return register(ModelConfig(name, "music_vae", kind, tools,
                                f"vae_{kind}", {"bars": bars, **pitch, **data_args}, {**base, **hparams},
                                f"MusicVAE, {bars}-bar 4/4 {kind}: bi-LSTM encoder, LSTM decoder."))


_POP909 = {"assume_meter": "4/4", "fix_offset": True}
# Free bits keep the latent carrying the melody: without them the KL term wins early and
# teacher-forced accuracy stalls near that of a plain language model (~0.6 at 700 steps).
_music_vae("musicvae_melody_2bar", "melody", 2, {**_POP909, "min_notes": 4},
           free_bits=48.0, batch_size=64, learning_rate=2e-3, max_steps=5500)
_music_vae("musicvae_melody_4bar", "melody", 4, {**_POP909, "min_notes": 8},
           free_bits=96.0, batch_size=64, learning_rate=2e-3, max_steps=6000)
_music_vae("musicvae_drums_2bar", "drums", 2, {"min_hits": 8}, ("generate",), free_bits=48.0, max_steps=4500)
# Magenta Studio's split: a low-KL model samples well (Generate, above) but reconstructs GMD's
# varied grooves at ~75%; with 256 free bits the latent carries the groove itself, so
# Interpolate starts and ends on the user's clips, at the cost of prior samples.
# Trained on windows that start on every beat (4x the data: on barlines only it reached 0.94
# on training windows but 0.83 on held-out ones), light decoder dropout and the step's position
# as decoder input (together 1.4-3 points of held-out accuracy above dropout 0.2 alone, at equal steps).
# Held-out accuracy flattened near 0.886 at a constant rate by step 9000; annealing it from
# step 9500 (Magenta's exponential decay) took it to 0.913 in 2000 steps.
_music_vae("musicvae_drums_2bar_hikl", "drums", 2, {"min_hits": 8, "train_hop": 4}, ("interpolate",),
           enc_units=512, dec_units=[512], z_size=256, free_bits=256.0, sampling_rate=0.0, dropout=0.1,
           dec_position=True, batch_size=64, learning_rate=2e-3, early_stop_patience=12,
           lr_decay_start=9500, lr_decay_rate=0.998, max_steps=11500)
_music_vae("musicvae_drums_4bar", "drums", 4, {"min_hits": 16}, free_bits=96.0, max_steps=3500)
# Melody in any meter for Generate and Interpolate: windows of 48 steps on each meter's grid
# (4 bars of 3/4 or 6/8, 6 of 2/4, 8 of 3/8, 3 of 4/4), the decoder reading bar and beat
# positions. Trained on the Essen folk songs (their meters are many; POP909's 4/4 is served by
# the 4/4 bundles above, which the model store prefers for 4/4 clips).
register(ModelConfig(
    "musicvae_melody_meter", "music_vae", "melody", ("generate", "interpolate"), "vae_melody",
    {"min_pitch": 48, "max_pitch": 95, "min_notes": 4, "meter": True, "window": 48},
    {"bars": 4, "steps_per_bar": 12, "min_pitch": 48, "max_pitch": 95, "meter": True, "window": 48,
     "enc_units": 256, "dec_units": [256], "z_size": 128, "free_bits": 48.0, "max_beta": 0.2, "beta_rate": 0.999,
     "sampling_rate": 800.0, "dropout": 0.0, "dec_position": False, "batch_size": 64, "learning_rate": 2e-3,
     "clip_norm": 1.0, "eval_every": 250, "checkpoint_every": 250, "early_stop_patience": 8, "max_steps": 6000},
    "MusicVAE melody in the clip's meter: 48-step windows of whole bars on the meter's grid, bi-LSTM "
    "encoder, LSTM decoder reading bar and beat positions.",
))


# Coconet (Huang et al. 2017) for Harmonize: a dilated 1D convolution over time with the four
# voices' pitches as channels (bridge/models/coconet.py says why not Coconet's 2D network),
# sized so that training takes about an hour on one shared CPU thread and an 8-bar Harmonize
# at 64 Gibbs passes stays well under 1.5 s.
register(ModelConfig(
    "coconet_chorales", "coconet", "chorale", ("harmonize",), "chorale",
    {"window": 128, "train_hop": 8, "eval_hop": 64},
    {"units": 192, "layers": 12, "dilations": [1, 2, 4, 8], "kernel": 3, "dropout": 0.1, "max_transpose": 6,
     "batch_size": 32, "learning_rate": 1e-3, "clip_norm": 1.0, "max_steps": 7000, "eval_every": 500,
     "checkpoint_every": 250, "early_stop_patience": 6, "lr_decay_start": 4000, "lr_decay_rate": 0.9995},
    "Coconet-style chorale model: four voices (S, A, T, B) on a 16th grid, masked-cell training, "
    "Gibbs sampling. Train on the Bach chorales.",
))
