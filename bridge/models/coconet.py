"""Coconet-style harmonization and inpainting, served from NumPy: Harmonize fills the missing
voices of a melody (or of any voices) in Bach chorale style, and erases and refills a region.

The model (trained by bridge/train/families/coconet.py) sees four voices on a 16th grid
(`bridge.encodings.chorale`) with some (step, voice) cells masked, and predicts a pitch (or
silence) for every cell; it was trained, as Coconet (Huang et al., "Counterpoint by
Convolution", ISMIR 2017), as an orderless NADE on random masks. Sampling is Coconet's
blocked Gibbs sampling with an annealed masking probability: the first pass predicts every
cell to fill at once, then each pass re-masks a random share of them (from PMAX down to PMIN
over the first ANNEAL of the passes, then PMIN) and resamples those given all the rest. Unlike
Coconet, the passes after the annealing also re-mask the cells of parallel fifths and octaves,
which the model alone writes dozens of times as often as Bach (see `Coconet.gibbs` and the card).

Architecture: Coconet's network is a deep 2D convolution over time x pitch with the voices as
channels (64 layers, 128 filters in the paper). Here it is a 1D convolution over time with
every voice's pitches (and the mask) as channels: an input convolution, then residual
layers `h += conv(relu(h))` with kernel 3 and dilations cycling 1, 2, 4, 8 (a receptive field
of about six 4/4 bars at 12 layers), then a dense layer to 4 x 47 logits per step. A pitch
shift is then something the network learns from transposed training data rather than gets
from weight sharing, but every layer is one matmul of [steps, 3 x units] by [3 x units,
units]: a Gibbs pass over an 8-bar clip costs a few milliseconds on one core, where a 2D
network of Coconet's size costs a second or more, and Harmonize must answer in Live in about
a second. The cost is linear in the clip's length and the number of passes (`iterations`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from bridge.bundle import Bundle
from bridge.clip import Clip
from bridge.encodings import chorale
from bridge.engine.layers import conv1d, sample_categorical, softmax
from bridge.models import MODEL_CLASSES
from bridge.models import chorale_clips as cc
from bridge.tools import ToolContext, ToolError

PMAX, PMIN, ANNEAL = 0.9, 0.1, 0.75  # Coconet's schedule: alpha_max, alpha_min (0.05 there), eta
MAX_STEPS = 2048  # 512 beats, the server's clip limit: about 3 s of Gibbs passes at the defaults


@dataclass(frozen=True)
class CoconetHparams:
    units: int
    layers: int
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    kernel: int = 3

    @classmethod
    def from_config(cls, hparams: dict[str, Any]) -> "CoconetHparams":
        return cls(int(hparams["units"]), int(hparams["layers"]), tuple(int(d) for d in hparams["dilations"]),
                   int(hparams.get("kernel", 3)))

    def dilation(self, layer: int) -> int:
        return self.dilations[layer % len(self.dilations)]


def allowed_classes() -> np.ndarray:
    """[4, NUM_CLASSES] bool: silence and each voice's range (chorale.RANGES)."""
    allowed = np.zeros((len(chorale.VOICES), chorale.NUM_CLASSES), bool)
    allowed[:, chorale.REST] = True
    for v, voice in enumerate(chorale.VOICES):
        low, high = chorale.RANGES[voice]
        allowed[v, chorale.pitch_class_of(low):chorale.pitch_class_of(high) + 1] = True
    return allowed


def annealed(iteration: int, iterations: int) -> float:
    """The share of the cells to fill that pass `iteration` (1..iterations-1) masks again."""
    span = max(1.0, ANNEAL * (iterations - 1))
    return max(PMIN, PMAX - (PMAX - PMIN) * (iteration - 1) / span)


class Coconet:
    def __init__(self, weights: dict[str, np.ndarray], hp: CoconetHparams, name: str = "coconet") -> None:
        self.hp, self.name = hp, name
        f32 = lambda key: np.ascontiguousarray(weights[key], np.float32)  # noqa: E731
        self.input = (f32("input/kernel"), f32("input/bias"))
        self.residual = [(f32(f"res_{k}/kernel"), f32(f"res_{k}/bias"), hp.dilation(k)) for k in range(hp.layers)]
        self.out = (f32("out/kernel"), f32("out/bias"))
        self.allowed = allowed_classes()

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> "Coconet":
        return cls(bundle.weights, CoconetHparams.from_config(bundle.config["hparams"]), bundle.name)

    def logits(self, classes: np.ndarray, mask: np.ndarray, position: np.ndarray) -> np.ndarray:
        """[B, T, 4, NUM_CLASSES] logits of classes [B, T, 4] with mask [B, T, 4] (1 = predict)."""
        h = conv1d(chorale.model_input(classes, mask, position), *self.input)
        for kernel, bias, dilation in self.residual:
            h += conv1d(np.maximum(h, 0.0), kernel, bias, dilation)
        kernel, bias = self.out
        out = np.maximum(h, 0.0) @ kernel + bias
        return out.reshape(*classes.shape, chorale.NUM_CLASSES)

    def gibbs(self, classes: np.ndarray, fill: np.ndarray, position: np.ndarray, iterations: int,
              temperature: float, rng: np.random.Generator, repair: bool = True,
              on_pass: Callable[[float], None] = lambda passes: None) -> np.ndarray:
        """classes [B, T, 4] with the cells where `fill` [B, T, 4] is set sampled anew, the rest kept.

        Pass 0 predicts all of them at once; later passes follow `annealed`. Each voice draws
        only silence or a pitch in its range; temperature 0 takes the likeliest class. With
        `repair`, the passes after the annealing also re-mask every cell to fill that is part
        of a parallel fifth or octave (`chorale.parallel_cells`): the model, asked again with
        its neighbours fixed, mostly finds another note (on the validation chorales this cuts
        the parallels by more than half; see the model card). `on_pass` hears the passes done.
        """
        x = classes.astype(np.int64)
        for i in range(iterations):
            mask = fill if i == 0 else fill & (rng.random(fill.shape) < annealed(i, iterations))
            if repair and i and i >= ANNEAL * (iterations - 1):
                mask |= fill & chorale.parallel_cells(x)
            for b in range(len(x)):  # a row at a time: a report (and cancellation point) at least every ~50 ms of CPU
                on_pass(i + b / len(x))
                row = mask[b:b + 1]
                if not row.any():
                    continue
                logits = np.where(self.allowed, self.logits(x[b:b + 1], row, position), -np.inf)[row]
                if temperature <= 0:
                    x[b][row[0]] = logits.argmax(axis=-1)
                else:
                    x[b][row[0]] = sample_categorical(softmax(logits, temperature), rng)
        return x

    # --- tool ----------------------------------------------------------------------------------

    def harmonize(self, clips: list[Clip], params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        """Four voices from the voices given, and optionally a region erased and refilled.

        The given voices' notes come back as they were (those starting in an erased region go,
        one sounding into it ends where it starts); the model sees them moved by whole octaves
        into their ranges, and its voices are moved back by the same octaves.
        """
        context = clips[0].with_notes([], length=max(c.length for c in clips))
        bar, beat = cc.meter_of(context)
        steps = cc.steps_of(context)
        if steps > MAX_STEPS:
            raise ToolError(f"clip is {steps / cc.SPQ:g} beats long; harmonize takes at most {MAX_STEPS // cc.SPQ} beats",
                            "bad_input")
        given = cc.assign(clips, params["voices"])
        shift = cc.octave_shift(given)
        if shift:
            ctx.notice(f"the model heard the input {abs(shift) // 12} octave(s) {'up' if shift > 0 else 'down'}, "
                       "in its voices' ranges; the new voices sound in the input's octave")
        start = int(round(params["start"] * cc.SPQ))
        end = int(round(params["end"] * cc.SPQ)) if params["end"] else steps
        erased = "" if params["erase"] == "none" else params["erase"]
        if erased and not 0 <= start < min(end, steps):
            raise ToolError(f"the region to erase (beats {params['start']:g} to {end / cc.SPQ:g}) lies outside the "
                            f"clip's {steps / cc.SPQ:g} beats", "bad_param")
        fill = np.zeros((steps, len(chorale.VOICES)), bool)
        for v, voice in enumerate(chorale.VOICES):
            if voice not in given:
                fill[:, v] = True
            elif voice in erased:
                fill[start:end, v] = True
        if not fill.any():
            ctx.notice("nothing to fill: the input holds all four voices and erase is none")
        n = params["variations"]
        rng = np.random.default_rng(params.get("seed"))
        position = chorale.position(bar, beat, 0, steps)
        iterations = params["iterations"]
        ctx.report(0.0, "sampling")
        sampled = self.gibbs(np.repeat(cc.grid(given, steps, shift)[None], n, 0), np.repeat(fill[None], n, 0),
                             position, iterations, params["temperature"], rng,
                             on_pass=lambda done: ctx.report(done / iterations, "sampling"))
        velocity = cc.velocity_of(given)
        out = []
        for i in range(n):
            suffix = f" {i + 1}/{n}" if n > 1 else ""
            parts = {}
            for v, voice in enumerate(chorale.VOICES):
                if voice in given and voice not in erased:
                    parts[voice] = list(given[voice])
                elif voice in given:
                    parts[voice] = cc.erase(given[voice], start / cc.SPQ, end / cc.SPQ) + cc.voice_notes(
                        sampled[i, :, v], start, min(end, steps), shift, velocity)
                else:
                    parts[voice] = cc.voice_notes(sampled[i, :, v], 0, steps, shift, velocity)
            if params["per_voice"]:
                out += [context.with_notes(parts[v], name=f"{chorale.NAMES[v]}{suffix}") for v in chorale.VOICES]
            else:
                out.append(context.with_notes([n for v in chorale.VOICES for n in parts[v]], name=f"harmonize{suffix}"))
        ctx.report(1.0, "done")
        return out


MODEL_CLASSES["coconet"] = Coconet
