"""The session runner on a real event loop: a Duet answer is made ahead of its decision and sent at
once if no note came meanwhile; a note in between makes it stale and the model runs again."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

from fake_bridge import fake_store

from bridge.clip import TimeSignature
from bridge.duet.events import Answer
from bridge.duet.modes import DUET
from bridge.duet.runner import PREPARE, SessionRunner
from bridge.duet.session import DuetSession

TEMPO = 240.0  # 4 beats a second


class Counting:
    """The fake store, counting the clips Continue is asked to answer and when."""

    def __init__(self) -> None:
        self.store = fake_store()
        self.asked: list[tuple[float, int]] = []  # (loop time, notes in the phrase)
        self.loop = None

    def require(self, *args, **kwargs):
        model = self.store.require(*args, **kwargs)
        outer = self

        class Watched:
            def continue_clip(self, clip, params, ctx):
                outer.asked.append((outer.loop.time(), len(clip.notes)))
                return model.continue_clip(clip, params, ctx)

        return Watched()


def run(notes, until_beat):
    """Play (pitch, start, end) notes into a runner (lead 0.1 s, wait 2 beats); the answers and the store."""
    counting = Counting()
    answers = []

    async def main():
        loop = asyncio.get_running_loop()
        counting.loop = loop
        session = DuetSession(DUET.resolve({"wait": 2.0, "length": 1}), TimeSignature(4, 4), TEMPO)
        runner = SessionRunner(session, counting, ThreadPoolExecutor(1), lambda e: answers.append((loop.time(), e)),
                               lambda exc: answers.append(exc))
        runner.sync(0.0, TEMPO, True)
        events = sorted([(s, 1, p) for p, s, _ in notes] + [(e, 0, p) for p, _, e in notes])
        for beat, on, pitch in events:
            await asyncio.sleep(max(0.0, runner.clock.wall_at(beat) - loop.time()))
            runner.note(beat, pitch, 90 if on else 0)
        await asyncio.sleep(max(0.0, runner.clock.wall_at(until_beat) - loop.time()))
        runner.close()
        return runner.clock.wall_at

    wall_at = asyncio.run(asyncio.wait_for(main(), 20))
    return answers, counting.asked, wall_at


def test_the_answer_is_made_ahead_and_sent_when_the_phrase_ends():
    answers, asked, wall_at = run([(60, 0.0, 1.0)], until_beat=4.5)
    (sent_at, answer), = answers
    assert isinstance(answer, Answer) and answer.start == 4.0  # release 1 + wait 2 + lead 0.4 -> beat 4
    assert len(asked) == 1, "one model run: the one made ahead"
    decision = wall_at(4.0) - 0.1
    assert asked[0][0] <= decision - PREPARE + 0.05, "made about PREPARE before the decision"
    assert sent_at >= decision - 1e-3, "but sent only once the pause has lasted"


def test_a_note_between_making_ahead_and_the_decision_makes_the_model_run_again():
    answers, asked, _ = run([(60, 0.0, 1.0), (62, 3.0, 3.25)], until_beat=6.5)
    (_, answer), = answers
    assert answer.start == 6.0  # release 3.25 + 2 + 0.4 -> beat 6
    assert [count for _, count in asked] == [1, 2], "the stale answer (one note) is not sent; both notes are read"
