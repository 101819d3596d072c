"""An interpolated Witten-Bell n-gram over event sequences: the baseline an RNN must beat.

P(w | h) = (c(h, w) + T(h) * P(w | h')) / (c(h) + T(h)), where T(h) is the number of distinct
events seen after h and h' drops h's oldest event; the order-0 model is add-one unigram. Each
window is scored from its own start, as the RNN is, so both see the same context.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np


class WittenBell:
    def __init__(self, order: int, vocab: int) -> None:
        self.order, self.vocab = order, vocab
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]

    def fit(self, sequences) -> "WittenBell":
        """Count every n-gram of the rows (an array [N, T] or a list of lists of any lengths)."""
        for row in _rows(sequences):
            for t, event in enumerate(row):
                for n in range(min(self.order, t + 1)):
                    self.counts[n][tuple(row[t - n:t])][event] += 1
        self.totals = [{h: sum(c.values()) for h, c in level.items()} for level in self.counts]
        return self

    def prob(self, history: tuple, event: int) -> float:
        unigram = self.counts[0][()]
        p = (unigram[event] + 1) / (self.totals[0][()] + self.vocab)
        for n in range(1, min(self.order, len(history) + 1)):
            h = history[len(history) - n:]
            seen = self.counts[n].get(h)
            if not seen:
                break
            types, total = len(seen), self.totals[n][h]
            p = (seen[event] + types * p) / (total + types)
        return p

    def score(self, sequences) -> tuple[float, float]:
        """Mean NLL (nats) of every event after the first, and how often the likeliest
        event (by the highest-order counts seen) is right."""
        nll, hits, steps = 0.0, 0, 0
        for row in _rows(sequences):
            for t in range(1, len(row)):
                history = tuple(row[max(0, t - self.order + 1):t])
                nll -= np.log(self.prob(history, row[t]))
                hits += self._guess(history) == row[t]
                steps += 1
        return nll / steps, hits / steps

    def _guess(self, history: tuple) -> int:
        for n in range(min(self.order - 1, len(history)), -1, -1):
            seen = self.counts[n].get(history[len(history) - n:] if n else ())
            if seen:
                return seen.most_common(1)[0][0]
        return 0


def _rows(sequences):
    """Rows as lists of ints; rows from an iterator are read one at a time, never all held."""
    return sequences.tolist() if isinstance(sequences, np.ndarray) else (list(row) for row in sequences)
