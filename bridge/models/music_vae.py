"""MusicVAE served from NumPy: Generate (sample the prior) and Interpolate (walk between clips).

The network (trained by bridge/train/families/music_vae.py) reads and writes one window of
`bars` 4/4 bars on a 16th grid, or, for a meter-aware model (`meter`), `window` steps of whole
bars on the clip's meter grid (`bridge.meter`: 48 steps are 3 bars of 4/4, 4 of 3/4 or 6/8, 6 of
2/4), its decoder reading where each step sits in the bar: melody events (no-event,
note-off, pitches) or 512-way drum bitmasks. Longer output chains windows whose latents follow a slerp walk, so consecutive
windows share most of their latent and 8 bars read as one phrase rather than four unrelated
2-bar ideas. All variations (and all windows of a chain) decode as one NumPy batch.

Imported Magenta models add three variants, all off by default: stacked bidirectional
encoders, a decoder fed back the 512-way one-hot (cat-drums), and hierdec's conductor. Our
own configs may add a fourth, a decoder that also reads the step's position (`dec_position`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from bridge.bundle import Bundle
from bridge.clip import Clip, Scale
from bridge.encodings.drums import DrumEncoding
from bridge.encodings.melody import MelodyEncoding
from bridge.engine.layers import LSTM, Bidirectional, Product, StackedLSTM, dense, gumbel
from bridge.meter import FEATURES as METER_FEATURES
from bridge.meter import MeterGrid
from bridge.models import MODEL_CLASSES, vae_clips
from bridge.tools import ToolContext, ToolError
from bridge.tools.common import drum_map_of

FOUR_FOUR = MeterGrid.of("4/4")

GENERATE_BARS = (1, 2, 4, 8)
WALK_STEP = 0.35  # how far each chained window's latent moves toward a fresh prior sample
MAX_INTERPOLATE_BARS = 8  # Magenta Studio stops at 4; each window beyond the model's costs a batch row


@dataclass(frozen=True)
class VAEHparams:
    """What serving and training must agree on; every value comes from the config's hparams."""

    kind: str
    enc_units: int
    dec_units: tuple[int, ...]
    z_size: int
    bars: int
    steps_per_bar: int = 16
    min_pitch: int = 48
    max_pitch: int = 95
    enc_layers: int = 1             # stacked bidirectional layers (Magenta's 16-bar models use 2)
    dec_feedback: str = "table"     # "table": the encoder's input row; "one_hot": Magenta's cat-drums
    conductor_units: tuple[int, ...] = ()  # hierarchical (hierdec-*): a conductor LSTM over segments
    segments: int = 0               # conductor steps, each decoded by the core decoder (0 = flat)
    dec_position: bool = False      # decoder also reads the step's position (counter bits; ours only)
    meter: bool = False             # windows of `window` steps on the clip's meter grid, bar positions read
    window: int = 0                 # steps per window when `meter`

    @classmethod
    def from_config(cls, kind: str, hparams: dict[str, Any]) -> "VAEHparams":
        return cls(kind, int(hparams["enc_units"]), tuple(int(u) for u in hparams["dec_units"]),
                   int(hparams["z_size"]), int(hparams["bars"]), int(hparams.get("steps_per_bar", 16)),
                   int(hparams.get("min_pitch", 48)), int(hparams.get("max_pitch", 95)),
                   int(hparams.get("enc_layers", 1)), str(hparams.get("dec_feedback", "table")),
                   tuple(int(u) for u in hparams.get("conductor_units", ())), int(hparams.get("segments", 0)),
                   bool(hparams.get("dec_position", False)), bool(hparams.get("meter", False)),
                   int(hparams.get("window", 0)))

    @property
    def encoding(self) -> MelodyEncoding | DrumEncoding:
        return MelodyEncoding(self.min_pitch, self.max_pitch) if self.kind == "melody" else DrumEncoding()

    @property
    def num_classes(self) -> int:
        return self.encoding.num_classes

    @property
    def steps(self) -> int:
        return self.window if self.meter else self.bars * self.steps_per_bar

    @property
    def position_width(self) -> int:
        return METER_FEATURES if self.meter else self.position_table().shape[1]

    def position_table(self) -> np.ndarray:
        """Row t = the step counter input at step t (`dec_position`): [steps, 0] when off."""
        return position_bits(self.steps) if self.dec_position else np.zeros((self.steps, 0), np.float32)

    def positions(self, grid: MeterGrid) -> np.ndarray:
        """Row t = the decoder's position input at step t of a window on `grid` (bar positions
        for a meter-aware model, else the step counter or nothing)."""
        return grid.features(np.arange(self.steps)) if self.meter else self.position_table()

    def grid_for(self, meter) -> MeterGrid:
        """The grid a clip in `meter` is read on: its own (meter-aware) or 4/4 16ths."""
        return MeterGrid.of(meter) if self.meter else FOUR_FOUR


def input_table(kind: str, num_classes: int) -> np.ndarray:
    """Row e = what the encoder reads, and the decoder is fed back, for event e.

    Melody: the one-hot event. Drums: the 9 class bits plus a "nothing hit" bit (Magenta's
    drum roll input), so the decoder input stays 10-wide instead of 512.
    """
    events = np.arange(num_classes)
    if kind == "melody":
        return np.eye(num_classes, dtype=np.float32)
    bits = DrumEncoding().bits(events)
    return np.concatenate([bits, (events == 0).astype(np.float32)[:, None]], axis=-1)


def position_bits(steps: int) -> np.ndarray:
    """Step t's binary counter as +-1 bits, lowest first: [steps, ceil(log2 steps)].

    A decoder that reads z at every step must still work out which step it is on, counting in
    its state; with the counter in its input it can read the bar and beat straight off (held-out
    drum reconstruction otherwise falls from 0.99 at step 0 to about 0.8 by the second bar).
    """
    bits = max(1, int(np.ceil(np.log2(steps))))
    return (2.0 * ((np.arange(steps)[:, None] >> np.arange(bits)) & 1) - 1.0).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation of rows of a and b; linear where they are (anti)parallel."""
    t = np.asarray(t, np.float32)[..., None] if np.ndim(t) else np.float32(t)
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.clip(np.sum(a * b, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    safe = so > 1e-6
    wa = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, so, 1.0), 1 - t)
    wb = np.where(safe, np.sin(t * omega) / np.where(safe, so, 1.0), t)
    return (wa * a + wb * b).astype(np.float32)


class MusicVAE:
    """Encoder and autoregressive decoder in NumPy, with the two tools on top."""

    def __init__(self, weights: dict[str, np.ndarray], hp: VAEHparams, name: str = "music_vae") -> None:
        self.hp, self.name, self.w = hp, name, weights
        lstm = lambda p: LSTM(weights[f"{p}/kernel"], weights[f"{p}/recurrent_kernel"], weights[f"{p}/bias"])
        suffix = lambda layer: f"_{layer}" if layer else ""  # noqa: E731
        self.encoder = [Bidirectional(lstm(f"encoder/fw{suffix(k)}"), lstm(f"encoder/bw{suffix(k)}"))
                        for k in range(hp.enc_layers)]
        self.decoder = StackedLSTM([lstm(f"decoder/lstm_{k}") for k in range(len(hp.dec_units))])
        self.conductor = StackedLSTM([lstm(f"decoder/conductor_{k}") for k in range(len(hp.conductor_units))])
        self.table = input_table(hp.kind, hp.num_classes)
        self.feedback = self.table if hp.dec_feedback == "table" else np.eye(hp.num_classes, dtype=np.float32)
        # The first decoder layer's input rows: [feedback row, z (or a conductor embedding), position].
        first, width, position = self.decoder.layers[0].kernel, self.feedback.shape[1], hp.position_width
        self.event_proj = self.feedback @ first[:width]
        self.embedding_kernel = first[width:first.shape[0] - position]
        self.position_kernel = first[first.shape[0] - position:]
        self._position_proj: dict[MeterGrid, np.ndarray] = {}
        # The top layer's h feeds both its own next step and the logits: one matmul for the two.
        top = self.decoder.layers[-1]
        self.top_out = Product(np.concatenate([top.recurrent_kernel, weights["decoder/out/kernel"]], 1))
        self.out_bias = np.asarray(weights["decoder/out/bias"], np.float32)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> "MusicVAE":
        return cls(bundle.weights, VAEHparams.from_config(bundle.config["kind"], bundle.config["hparams"]), bundle.name)

    def encode(self, events: np.ndarray, on_step: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std [B, Z] of int events [B, T]; `on_step` after every step."""
        x = self.table[events]
        for k, layer in enumerate(self.encoder):  # each layer reads both directions' outputs of the one below
            x, h_fw, h_bw = layer.run(x, on_step, outputs=k + 1 < len(self.encoder))
        h = np.concatenate([h_fw, h_bw], axis=-1)
        sigma = np.logaddexp(0.0, dense(h, self.w["encoder/sigma/kernel"], self.w["encoder/sigma/bias"]))
        return dense(h, self.w["encoder/mu/kernel"], self.w["encoder/mu/bias"]), sigma

    def position_proj(self, grid: MeterGrid) -> np.ndarray:
        """The position rows' share of the first layer's projection, per step of a window on `grid`."""
        if grid not in self._position_proj:
            self._position_proj[grid] = self.hp.positions(grid) @ self.position_kernel
        return self._position_proj[grid]

    def decoder_logits(self, z: np.ndarray, events: np.ndarray, grid: MeterGrid = FOUR_FOUR) -> np.ndarray:
        """Teacher-forced logits [B, T, C]: what training optimises, for parity checks and eval."""
        run = self._decoder(z, grid)
        out, prev = [], None
        for t in range(events.shape[1]):
            out.append(run(prev) + self.out_bias)
            prev = events[:, t]
        return np.stack(out, axis=1)

    def decode(self, z: np.ndarray, rng: np.random.Generator, temperature: float = 1.0,
               allowed: np.ndarray | None = None,
               on_step: Callable[[int], None] = lambda t: None, grid: MeterGrid = FOUR_FOUR) -> np.ndarray:
        """Events [B, steps] decoded from z [B, Z]; temperature <= 0 takes the argmax.

        `allowed` [C] masks classes out of the softmax (out-of-scale pitches). Each step draws
        by argmax(logits / temperature + Gumbel noise), the noise for all steps drawn at once,
        with the output bias and the mask folded into it.
        """
        run = self._decoder(np.asarray(z, np.float32), grid)
        events = np.zeros((len(z), self.hp.steps), np.int64)
        scale = np.float32(1.0 / max(temperature, 1e-6)) if temperature > 0 else np.float32(1.0)
        offset = self.out_bias * scale
        if allowed is not None:
            offset[~np.asarray(allowed, bool)] = -np.inf
        shape = (self.hp.steps, len(z), len(offset))
        offset = gumbel(rng, shape) + offset if temperature > 0 else np.broadcast_to(offset, shape)
        prev = None
        for t in range(self.hp.steps):
            on_step(t)
            logits = run(prev)
            if scale != 1.0:
                logits *= scale
            logits += offset[t]  # a fresh row block of this step's product: safe to add into
            prev = events[:, t] = logits.argmax(axis=-1)
        return events

    def _decoder(self, z: np.ndarray, grid: MeterGrid = FOUR_FOUR) -> Callable[[np.ndarray | None], np.ndarray]:
        """A step function, called once per step in order: previous events [B] (None at the
        start) -> logits [B, C] without the output bias (`decode` folds it into its noise).

        The first layer's input is [feedback row of the previous event, z, position]; its
        projection is split into a per-event and a per-step table (computed once at load) plus
        z's part (once per call), so a step costs row look-ups instead of a matmul. The top
        layer's h is multiplied once by [recurrent kernel | output kernel], giving the logits
        now and its recurrent term for the next step. A hierarchical model first runs its
        conductor (zero inputs, as Magenta's hierdec models with autoregression disabled) to one
        embedding per segment; each segment restarts the core decoder from its embedding, which
        also takes z's place in the input. The fed-back event runs on across segments.
        """
        embeddings = self._conductor(z) if self.hp.segments else z[:, None]
        layers = self.decoder.layers
        *lower, top = layers
        gates = 4 * top.units
        segment_steps = self.hp.steps // embeddings.shape[1]
        states: list = []
        t, z_proj, top_rec = 0, None, None
        position_proj = self.position_proj(grid) if self.hp.position_width else None

        def step(prev: np.ndarray | None) -> np.ndarray:
            nonlocal t, z_proj, states, top_rec
            if t % segment_steps == 0:
                embedding = embeddings[:, t // segment_steps]
                states = _split_state(np.tanh(dense(embedding, self.w["decoder/z_to_state/kernel"],
                                                    self.w["decoder/z_to_state/bias"])), self.hp.dec_units)
                z_proj = embedding @ self.embedding_kernel + layers[0].bias
                top_rec = top.recurrent(states[-1][0])
            if prev is None:
                x_proj = z_proj.copy()  # a fresh array: activate overwrites it
            else:
                x_proj = self.event_proj.take(prev, axis=0)
                x_proj += z_proj
            if position_proj is not None:
                x_proj += position_proj[t]
            t += 1
            for k, layer in enumerate(lower):
                h, states[k] = layer.step_projected(x_proj, states[k])
                x_proj = layers[k + 1].input(h)
                x_proj += layers[k + 1].bias
            x_proj += top_rec
            h, c = top.activate(x_proj, states[-1][1])
            states[-1] = (h, c)
            both = self.top_out(h)
            top_rec = both[:, :gates]
            return both[:, gates:]
        return step

    def _conductor(self, z: np.ndarray) -> np.ndarray:
        """Per-segment embeddings [B, segments, U]: the conductor's last layer h at each step."""
        init = np.tanh(dense(z, self.w["decoder/conductor_init/kernel"], self.w["decoder/conductor_init/bias"]))
        states = _split_state(init, self.hp.conductor_units)
        out, _ = self.conductor.run(np.zeros((len(z), self.hp.segments, 1), np.float32), states)
        return out

    # --- tools ---------------------------------------------------------------------------------

    def _progress(self, ctx: ToolContext, start: float, span: float, message: str) -> Callable[[int], None]:
        return lambda t: ctx.report(start + span * t / self.hp.steps, message)

    def generate(self, clips: list[Clip], params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        """`variations` clips of `bars` bars from the prior; an input clip only lends its context.

        Bars below the model's window keep the first bars of a window; above it, windows chain
        along a slerp walk (WALK_STEP). The scale (params, else the input clip's) masks
        out-of-scale pitches in the softmax; a melody input also lends its register and velocity.
        """
        context = clips[0] if clips else Clip()
        grid = self.hp.grid_for(context.time_signature)
        bars = params["bars"]
        if bars not in GENERATE_BARS:
            raise ToolError(f"bars must be one of {', '.join(map(str, GENERATE_BARS))}, got {bars}", "bad_param")
        scale = Scale(params["scale_root"], params["scale_mode"]) if params.get("scale_root") is not None else context.scale
        drum_map = drum_map_of(params) if self.hp.kind == "drums" else None
        rng = np.random.default_rng(params.get("seed"))
        n, windows = params["variations"], max(1, -(-bars * grid.bar_steps // self.hp.steps))
        ctx.report(0.0, "sampling latents")
        z = rng.standard_normal((n, windows, self.hp.z_size)).astype(np.float32)
        for k in range(1, windows):
            z[:, k] = slerp(z[:, k - 1], z[:, k], WALK_STEP)
        allowed = None
        if scale is not None and self.hp.kind == "melody":
            allowed = self.hp.encoding.pitch_mask(scale.pitch_classes)
        events = self.decode(z.reshape(n * windows, -1), rng, params["temperature"], allowed,
                             self._progress(ctx, 0.05, 0.9, "decoding"), grid)
        events = events.reshape(n, windows * self.hp.steps)[:, :bars * grid.bar_steps]
        style = vae_clips.Style.of([context], self.hp.kind)
        out = []
        for i in range(n):
            notes = vae_clips.to_notes(events[i], self.hp, style, drum_map, grid)
            out.append(Clip(notes, bars * context.beats_per_bar, context.tempo, context.time_signature, scale,
                            f"generate {i + 1}/{n}"))
        ctx.report(1.0, "done")
        return out

    def interpolate(self, a: Clip, b: Clip, params: dict[str, Any], ctx: ToolContext) -> list[Clip]:
        """Clips on the slerp path between the posterior means of A and B.

        Outputs are as long as the shorter input in whole bars, at most MAX_INTERPOLATE_BARS;
        both inputs are read from beat 0 over that length, a shorter one looped (as Live plays
        it), a longer one trimmed. Lengths above the model's window are cut into windows, and
        window w of every output lies on the path between window w of A and of B.
        `amount` returns the one clip at that point of the path; `keep_ends` (2 steps or more)
        returns A and B themselves as first and last clips. Temperature 0 decodes by argmax.
        """
        grid = self.hp.grid_for(a.time_signature)
        drum_map = drum_map_of(params) if self.hp.kind == "drums" else None
        rng = np.random.default_rng(params.get("seed"))
        bars = max(1, min(MAX_INTERPOLATE_BARS, int(np.ceil(round(min(a.bars, b.bars), 6)))))
        windows = -(-bars * grid.bar_steps // self.hp.steps)
        events = []
        for c in (a, b):
            ctx.report(0.0, "encoding A and B")
            events.append(vae_clips.to_events(c, self.hp, drum_map, windows * self.hp.steps, grid))
        events = np.stack(events)
        mu, _ = self.encode(events.reshape(2 * windows, self.hp.steps), on_step=lambda: ctx.report(0.05, "encoding A and B"))
        if params.get("amount") is not None:
            ts = np.array([params["amount"]], np.float32)
        else:
            ts = np.linspace(0.0, 1.0, params["steps"], dtype=np.float32) if params["steps"] > 1 else np.array([0.5], np.float32)
        steps = len(ts)
        keep = bool(params.get("keep_ends")) and steps > 1
        inner = ts[1:-1] if keep else ts
        decoded = np.zeros((0, windows * self.hp.steps), np.int64)
        if len(inner):
            t = np.repeat(inner, windows)
            z = slerp(np.tile(mu[:windows], (len(inner), 1)), np.tile(mu[windows:], (len(inner), 1)), t)
            decoded = self.decode(z, rng, params["temperature"], None, self._progress(ctx, 0.1, 0.85, "decoding"), grid)
            decoded = decoded.reshape(len(inner), windows * self.hp.steps)
        label = f"[{a.name or 'A'}+{b.name or 'B'}]"
        styles = vae_clips.Style.of([a], self.hp.kind), vae_clips.Style.of([b], self.hp.kind)
        out, it = [], iter(decoded)
        for i, t in enumerate(ts):
            name = f"interpolate {i + 1}/{steps} {label}"
            if keep and i in (0, steps - 1):
                out.append(replace(a if i == 0 else b, name=name))
                continue
            style = vae_clips.Style.blend(*styles, float(t))
            notes = vae_clips.to_notes(next(it)[:bars * grid.bar_steps], self.hp, style, drum_map, grid)
            out.append(Clip(notes, bars * a.beats_per_bar, a.tempo, a.time_signature, a.scale, name))
        ctx.report(1.0, "done")
        return out


def _split_state(flat: np.ndarray, units: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """A flat initial state cut into (h, c) per layer (the order the bundle stores)."""
    states, at = [], 0
    for u in units:
        states.append((flat[:, at:at + u], flat[:, at + u:at + 2 * u]))
        at += 2 * u
    return states


MODEL_CLASSES["music_vae"] = MusicVAE
