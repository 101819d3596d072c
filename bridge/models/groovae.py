"""GrooVAE served from NumPy: Groove (humanize a drum clip) and Drumify (drums from any rhythm).

The network is trained on windows of a few bars (bridge/train/families/groovae.py): 2-bar 4/4
windows on 16ths for Magenta's layout, or, for meter-aware models, windows of whole bars of
the clip's meter on its grid (`bridge.meter`) whose decoder also reads where each step sits in
its bar. A clip of any length is cut into windows whole bars apart; each window after the
first replays its overlap with the previous one from what was already decoded
(teacher-forced), so the decoder's state carries across the border instead of restarting.
All variations run as one batch, and every window of a clip is encoded in one batch.

Temperature scales the posterior noise (z = mu + sigma * eps * T) and the hit logits, so low
values give the model's likeliest reading of the input. One eps per variation is shared by all
windows, so a variation keeps one feel for the whole clip.

Groove keeps the player's dynamics by default (`dynamics` 1: each drum's velocities keep the
input's level and take the model's accents around it). New hits (ghost notes, drumify of a
drum clip) take the input's own sounds (`bridge.drum_feel`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from bridge.bundle import Bundle
from bridge.clip import Clip, GridNote, Note
from bridge.drum_feel import Feel
from bridge.drums import NUM_CLASSES, DrumMap, looks_like_drums
from bridge.encodings import groove as enc
from bridge.encodings.features import LEGACY_GRID
from bridge.engine.layers import LSTM, Bidirectional, Product, StackedLSTM, dense, sigmoid
from bridge.meter import MeterGrid
from bridge.models import MODEL_CLASSES
from bridge.tools import ToolError
from bridge.tools.common import drum_map_of
# Model offsets are kept inside +-MAX_OFFSET of a step's half-width, so a grooved note read back
# (rounded to the nearest 16th) lands on the step it came from.
MAX_OFFSET = 0.98
REPORT_EVERY = 256  # cells placed between two progress reports (the cancellation point)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


class GrooVAE:
    """Encoder (bidirectional LSTM -> mu, sigma) and autoregressive decoder on [T, 27] tensors."""

    def __init__(self, weights: dict[str, np.ndarray], mode: str, name: str = "groovae",
                 window: int = enc.WINDOW_STEPS, meter: bool = False, dec_inputs: bool = False) -> None:
        if mode not in enc.MODES:
            raise ValueError(f"unknown GrooVAE mode {mode!r}")
        self.mode, self.name, self.w = mode, name, weights
        self.window, self.meter, self.dec_inputs = window, meter, dec_inputs
        lstm = lambda p: LSTM(weights[f"{p}/kernel"], weights[f"{p}/recurrent_kernel"], weights[f"{p}/bias"])
        self.encoder = Bidirectional(lstm("enc_fw"), lstm("enc_bw"))
        depth = sum(1 for k in weights if k.startswith("dec_") and k.endswith("/recurrent_kernel"))
        self.decoder = StackedLSTM([lstm(f"dec_{i}") for i in range(depth)])
        self.z_size = weights["mu/bias"].shape[0]
        # The decoder's step, fused (see `decode`): the first layer's input rows split into the
        # fed-back step (multiplied each step) and z, position and control (known before the
        # loop: one product for every step); each layer's new h multiplied once by
        # [its own recurrent kernel | the next layer's input kernel, or the output kernel]. Each
        # layer's recurrent product becomes a view of its fused one, so the kernel is held once.
        layers = self.decoder.layers
        first = layers[0].kernel
        self.prev_kernel = first[:enc.FEATURES]  # 27 rows: one plain product beats the blocked one 3x
        self.static_kernel = first[enc.FEATURES:]
        after = [above.kernel for above in layers[1:]] + [weights["out/kernel"]]
        self.fused = [Product(np.concatenate([layer.recurrent_kernel, kernel], 1)) for layer, kernel in zip(layers, after)]
        for layer, fused in zip(layers, self.fused):
            layer.recurrent = fused.columns(4 * layer.units)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> "GrooVAE":
        hp = bundle.config["hparams"]
        return cls(bundle.weights, hp["mode"], bundle.name, int(hp.get("window", enc.WINDOW_STEPS)),
                   bool(hp.get("meter", False)), bool(hp.get("dec_inputs", False)))

    @property
    def default_grid(self) -> MeterGrid:
        return LEGACY_GRID

    def grid_for(self, clip: Clip) -> MeterGrid:
        """The clip's meter on its grid, or 4/4 16ths for a 4/4-only model."""
        return MeterGrid.of(clip.time_signature) if self.meter else LEGACY_GRID

    def positions(self, grid: MeterGrid, start: int, steps: int) -> np.ndarray:
        """The decoder's position input for steps start.. of a clip: [steps, P], P = 0 if 4/4-only."""
        if not self.meter:
            return np.zeros((steps, 0), np.float32)
        return grid.features(np.arange(start, start + steps))

    def encode(self, inputs: np.ndarray, on_step=None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std [B, Z] of encoder inputs [B, T, D]; `on_step` after every step."""
        _, h_fw, h_bw = self.encoder.run(inputs, on_step, outputs=False)
        h = np.concatenate([h_fw, h_bw], axis=-1)
        sigma = _softplus(dense(h, self.w["sigma/kernel"], self.w["sigma/bias"]))
        return dense(h, self.w["mu/kernel"], self.w["mu/bias"]), sigma

    def initial_state(self, z: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Decoder state from z: tanh(dense(z)) cut into (h, c) per layer, as in training."""
        flat = np.tanh(dense(z, self.w["dec_init/kernel"], self.w["dec_init/bias"]))
        states, at = [], 0
        for layer in self.decoder.layers:
            u = layer.units
            states.append((flat[:, at:at + u], flat[:, at + u:at + 2 * u]))
            at += 2 * u
        return states

    def decode(self, z: np.ndarray, rng: np.random.Generator, temperature: float = 1.0,
               prefix: np.ndarray | None = None, known_hits: np.ndarray | None = None,
               sample_hits: bool = True, grid: MeterGrid = LEGACY_GRID, start: int = 0,
               controls: np.ndarray | None = None) -> np.ndarray:
        """Decode one window [B, window, 27] from z [B, Z], the window starting at step `start`
        of a clip on `grid`. controls [B, window, C] are the encoder inputs, read at each step
        by a `dec_inputs` model (none given: silence, as for a sample from the prior).

        prefix [B, P, 27] is replayed as the first P steps' output. known_hits [B, window, 9]
        are always hits; with sample_hits the model may add hits (Bernoulli of logits / T),
        without it the hits are exactly known_hits. Velocity and offset are the model's.
        """
        batch = z.shape[0]
        layers = self.decoder.layers
        states = self.initial_state(z)
        cells = [c for _, c in states]
        recurrent = [layer.recurrent(h) for layer, (h, _) in zip(layers, states)]
        positions = self.positions(grid, start, self.window)
        if self.dec_inputs and controls is None:
            controls = np.zeros((batch, self.window, enc.MODES[self.mode]), np.float32)
        known = [np.broadcast_to(z[:, None], (batch, self.window, z.shape[1])),
                 np.broadcast_to(positions, (batch, *positions.shape))] + ([controls] if self.dec_inputs else [])
        static = (np.concatenate(known, axis=-1).reshape(batch * self.window, -1) @ self.static_kernel
                  + layers[0].bias).reshape(batch, self.window, -1)
        prev = np.zeros((batch, enc.FEATURES), np.float32)
        out = np.zeros((batch, self.window, enc.FEATURES), np.float32)
        n = NUM_CLASSES
        for t in range(self.window):
            x = static[:, t] + prev @ self.prev_kernel
            for k, layer in enumerate(layers):
                x += recurrent[k]
                h, cells[k] = layer.activate(x, cells[k])
                both = self.fused[k](h)
                own = 4 * layer.units
                recurrent[k] = both[:, :own]
                if k + 1 < len(layers):
                    x = both[:, own:] + layers[k + 1].bias
                else:
                    y = both[:, own:] + self.w["out/bias"]
            if prefix is not None and t < prefix.shape[1]:
                prev = out[:, t] = prefix[:, t]
                continue
            hits = np.zeros((batch, n), np.float32) if known_hits is None else known_hits[:, t].astype(np.float32)
            if sample_hits:
                p = sigmoid(y[:, :n] / max(temperature, 1e-3))
                hits = np.maximum(hits, (rng.random(p.shape) < p).astype(np.float32))
            out[:, t, :n] = hits
            out[:, t, n:2 * n] = sigmoid(y[:, n:2 * n]) * hits
            out[:, t, 2 * n:] = np.tanh(y[:, 2 * n:]) * hits
            prev = out[:, t]
        return out

    def perform(self, performance: np.ndarray, variations: int, temperature: float, rng: np.random.Generator,
                known_hits: np.ndarray | None = None, sample_hits: bool = True, progress=None,
                grid: MeterGrid = LEGACY_GRID) -> np.ndarray:
        """Decode a whole clip [T, 27] on `grid` (the encoder sees its transform) into
        [V, T, 27], window by window; windows start on barlines, about half a window apart."""
        steps = performance.shape[0]
        hop = grid.bar_steps * max(1, (self.window // 2) // grid.bar_steps)
        starts = enc.windows(steps, self.window, hop)
        padded_len = starts[-1] + self.window
        padded = np.zeros((padded_len, enc.FEATURES), np.float32)
        padded[:steps] = performance
        known = None
        if known_hits is not None:
            known = np.zeros((padded_len, NUM_CLASSES), np.float32)
            known[:steps] = known_hits
        inputs = enc.encoder_inputs(np.stack([padded[s:s + self.window] for s in starts]), self.mode)
        mu, sigma = self.encode(inputs, on_step=(lambda: progress(0.0, "reading the clip")) if progress else None)
        eps = rng.standard_normal((variations, self.z_size)).astype(np.float32) * temperature
        result = np.zeros((variations, padded_len, enc.FEATURES), np.float32)
        for i, s in enumerate(starts):
            z = (mu[i] + sigma[i] * eps).astype(np.float32)
            prefix = result[:, s:starts[i - 1] + self.window] if i else None
            window = None if known is None else np.broadcast_to(known[s:s + self.window],
                                                                (variations, self.window, NUM_CLASSES))
            controls = np.broadcast_to(inputs[i], (variations, *inputs[i].shape))
            result[:, s:s + self.window] = self.decode(z, rng, temperature, prefix, window, sample_hits, grid, s,
                                                       controls)
            if progress:
                progress((i + 1) / len(starts), f"window {i + 1}/{len(starts)}")
        return result[:, :steps]

    def groove(self, clip: Clip, params: dict, ctx) -> list[Clip]:
        """Re-time and re-voice the drum hits of a clip; everything the map does not know stays put."""
        if self.mode != "humanize":
            raise ToolError(f"bundle {self.name} is a {self.mode} model and cannot groove", "bad_input")
        drum_map = drum_map_of(params)
        grid = self.grid_for(clip)
        spq = grid.steps_per_quarter
        amount, n = float(params["amount"]), int(params["variations"])
        # (step, class) -> indices of the clip's notes that play it; the loudest is what the model saw.
        cells: dict[tuple[int, int], list[int]] = {}
        for i, note in enumerate(clip.notes):
            k = drum_map.classify(note.pitch)
            if not note.mute and k is not None and note.start < clip.length:
                cells.setdefault((enc.grid_position(note.start, spq)[0], k), []).append(i)
        # A note just before the clip end can round to the step after it: that step is decoded too.
        steps = max([enc.num_steps(clip.length, spq)] + [step + 1 for step, _ in cells])
        performance = np.zeros((steps, enc.FEATURES), np.float32)
        for (step, k) in cells:
            performance[step, k] = 1.0
        ctx.report(0.0, "grooving")
        rng = np.random.default_rng(params["seed"])
        ghost = bool(params["ghost_notes"]) and amount > 0
        out = self.perform(performance, n, float(params["temperature"]), rng, performance[:, :NUM_CLASSES],
                           ghost, lambda f, m: ctx.report(0.95 * f, m), grid)
        feel = Feel(_grid_hits(clip, drum_map, spq), grid, drum_map)
        # Notes keep the input's order, so amount 0 gives back the input's notes exactly.
        results = []
        for v in range(n):
            ctx.report(0.95 + 0.05 * v / n, "placing notes")
            placing = lambda: ctx.report(0.95 + 0.05 * v / n, "placing notes")  # noqa: E731
            results.append(replace(clip, notes=self._regroove(clip, cells, out[v], amount, float(params["dynamics"]),
                                                              feel, placing),
                                   name=f"groove {v + 1}/{n} {clip.name}".rstrip()))
        ctx.report(1.0, "done")
        return results

    @staticmethod
    def _regroove(clip: Clip, cells: dict[tuple[int, int], list[int]], tensor: np.ndarray, amount: float,
                  dynamics: float, feel: Feel, report=lambda: None) -> tuple[Note, ...]:
        """The clip's notes moved toward the model's timing and velocity by `amount`, plus ghost
        notes in the input's own sounds. With `dynamics` 1 each drum's velocities keep the
        input's mean level (the model's accents move around it); with 0 the model's level.
        `report` is called every REPORT_EVERY cells (the cancellation point)."""
        hits, velocities, offsets = enc.split(tensor)
        offsets = np.clip(offsets, -MAX_OFFSET, MAX_OFFSET)  # once: a scalar through NumPy costs 2.6 us a note
        spq = feel.grid.steps_per_quarter
        notes = list(clip.notes)
        latest = max(clip.length - 1e-3, 0.0)
        leads = {cell: max(members, key=lambda i: (clip.notes[i].velocity, -i)) for cell, members in cells.items()}
        level = {}  # class -> (input mean, model mean) velocity over the input's hits
        for k in {k for _, k in cells}:
            report()
            played = [(clip.notes[i].velocity, float(velocities[step, k]) * 127.0)
                      for (step, kk), i in leads.items() if kk == k]
            level[k] = (np.mean([a for a, _ in played]), np.mean([b for _, b in played]))
        for count, ((step, k), members) in enumerate(cells.items()):
            if count % REPORT_EVERY == 0:
                report()
            lead = leads[step, k]
            target_start = float(enc.onset_beats(step, offsets[step, k], spq))
            target_velocity = float(velocities[step, k]) * 127.0 - dynamics * (level[k][1] - level[k][0])
            shift = amount * (target_start - clip.notes[lead].start)
            lift = amount * (target_velocity - clip.notes[lead].velocity)
            for i in members:
                note = clip.notes[i]
                start = min(max(0.0, note.start + shift), max(note.start, latest))
                velocity = min(127, max(1, round(note.velocity + lift)))
                notes[i] = note._replace(start=start, velocity=velocity)
        for count, (step, k) in enumerate(zip(*np.nonzero(hits > 0.5))):
            if count % REPORT_EVERY == 0:
                report()
            if (int(step), int(k)) in cells:
                continue
            start = float(enc.onset_beats(step, offsets[step, k], spq))
            velocity = min(127, max(1, round(amount * float(velocities[step, k]) * 127.0)))
            notes.append(Note(feel.pitch(int(k), int(step)), min(max(0.0, start), latest), 1.0 / spq, velocity))
        return tuple(notes)

    def drumify(self, clip: Clip, params: dict, ctx) -> list[Clip]:
        """A drum pattern per variation that follows the onsets of any clip (pitch is ignored).

        A drum clip's own sounds are kept: when it looks like drums (`looks_like_drums`), each
        class is written with the pitch the input used for it."""
        if self.mode != "tap":
            raise ToolError(f"bundle {self.name} is a {self.mode} model and cannot drumify", "bad_input")
        drum_map = drum_map_of(params)
        grid = self.grid_for(clip)
        spq = grid.steps_per_quarter
        n = int(params["variations"])
        steps = enc.num_steps(clip.length, spq)
        audible = clip.audible_notes()
        performance = enc.encode([enc.Hit(note.start, 0, note.velocity) for note in audible], steps, spq)
        ctx.report(0.0, "drumifying")
        rng = np.random.default_rng(params["seed"])
        out = self.perform(performance, n, float(params["temperature"]), rng,
                           progress=lambda f, m: ctx.report(0.95 * f, m), grid=grid)
        drums = _grid_hits(clip, drum_map, spq)
        feel = Feel(drums if looks_like_drums(audible, drum_map) else [], grid, drum_map)
        latest = max(clip.length - 1e-3, 0.0)
        results = []
        for v in range(n):
            ctx.report(0.95 + 0.05 * v / n, "placing notes")
            notes = [Note(feel.pitch(h.drum_class, enc.grid_position(h.start, spq)[0]), min(h.start, latest),
                          1.0 / spq, h.velocity) for h in enc.decode(out[v], spq)]
            results.append(clip.with_notes(notes, name=f"drumify {v + 1}/{n} {clip.name}".rstrip()))
        ctx.report(1.0, "done")
        return results


def _grid_hits(clip: Clip, drum_map: DrumMap, spq: int) -> list[tuple[int, GridNote]]:
    """(class, grid note) of the clip's audible drum hits on a grid of `spq` steps a beat."""
    out = []
    for note in clip.audible_notes():
        k = drum_map.classify(note.pitch)
        if k is not None:
            step, offset = enc.grid_position(note.start, spq)
            out.append((k, GridNote(note.pitch, step, step + 1, note.velocity, -offset / 2.0, note)))
    return out


MODEL_CLASSES["groovae"] = GrooVAE
