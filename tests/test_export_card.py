"""What the model card says about how a run was made: the commands that produced it, why it
stopped, notes on corrected numbers, and data paths that mean something on another machine."""
from pathlib import Path

import numpy as np

from bridge.train.export import _commands, _portable, _stopped, model_card

FIRST = "magenta-bridge train groovae_humanize_2bar --data /work/shared/data/groove --run-dir runs/g"
FINISH = FIRST + " --steps 4500"


def _config(**training) -> dict:
    return {"name": "g", "help": "", "model_class": "groovae", "config": "c", "tools": ["groove"], "kind": "drums",
            "hparams": {}, "converter": "groove", "converter_args": {},
            "data": {"sources": [{"source": "groove", "path": "../shared/data/groove", "license": "CC BY 4.0"}],
                     "split": "s", "files": {}, "skipped": {}},
            "training": {"commands": [FIRST], "seed": 0, "steps": 4500, "checkpoint_step": 4500,
                         "stopped": "max_steps", "wall_time_s": 1565.5, "notes": [], **training},
            "eval": {"loss": 34.7, "hit_accuracy": 0.96, "examples": 10, "baselines": {},
                     "slice": {"file": "eval_slice.npz", "examples": 2, "loss": 35.0, "kl_bits": 50.0,
                               "hit_accuracy": 0.95}},
            "test": {"loss": 36.1, "hit_accuracy": 0.94, "examples": 12}}


def test_card_names_every_invocation_that_produced_the_result():
    card = model_card(_config(commands=[FIRST, FINISH], stopped="--steps",
                              notes=["wall time recomputed from event-file timestamps"]), "loss (recon)")
    assert f"- commands: trained with `{FIRST}`; finished with `{FINISH}`" in card
    assert "4500 steps (stopped by --steps)" in card and "wall time 26.1 min" in card
    assert "- note: wall time recomputed from event-file timestamps" in card
    assert "| loss (recon) | 34.7000 | 36.1000 |" in card and "perplexity" not in card
    assert "| hit accuracy | 0.9600 | 0.9400 |" in card and "test (12 examples of files nothing else read)" in card
    assert "scores loss 35.0000, hit accuracy 0.9500." in card
    assert f"- command: `{FIRST}`" in model_card(_config(), "loss")


def test_command_history_ends_with_the_invocation_that_finished():
    run = {"commands": ["a", "b", "c"]}
    assert _commands(run, {"command": "b"}) == ["a", "b"]  # c was killed before it finished
    assert _commands(run, {"command": "d"}) == ["a", "b", "c", "d"]
    assert _commands({"command": "a"}, {}) == ["a"]  # a run from before run.json listed commands
    assert _commands({"command": None}, {"command": None}) == []  # called from Python


def test_stop_reason_of_runs_from_the_earlier_trainer():
    """That trainer wrote "max_steps" even when --steps set the limit; run.json's limit tells."""
    hparams = {"max_steps": 12000}
    assert _stopped({"hparams": hparams, "max_steps": 4500}, {"stopped": "max_steps"}) == "--steps"
    assert _stopped({"hparams": hparams, "max_steps": 12000}, {"stopped": "max_steps"}) == "max_steps"
    assert _stopped({"hparams": hparams, "max_steps": 4500}, {"stopped": "early_stopping"}) == "early_stopping"


def test_absolute_paths_in_commands_become_relative_to_where_they_ran():
    base = Path("/work/main")
    assert _portable(FIRST, base) == FIRST.replace("/work/shared/data/groove", "../shared/data/groove")
    assert _portable("train x --cache=/work/main/cache --hparams 'a=1, b=2'", base) == \
        "train x --cache=cache --hparams 'a=1, b=2'"


def test_meter_aware_cards_list_the_meters_their_converter_saw(tmp_path):
    from bridge.bundle import load_bundle, save_bundle, write_card_section
    from bridge.train.export import trained_meters

    stats = {"windows in 4/4": 100, "windows in 3/4": 20, "windows in 3/4 (4/4 without beat 3)": 40,
             "windows in 12/8": 10, "windows in 6/8 (4/4 shuffle stretched 3:2)": 60, "examples": 130}
    assert trained_meters({"stats": stats}) == ["3/4", "4/4", "6/8"]  # 50 windows or more, made ones too
    assert trained_meters({"stats": {"windows in 4/4": 30, "windows in 3/4": 6, "windows in 5/4": 2}}) == ["3/4", "4/4"]
    config = {**_config(), "meters": ["3/4", "4/4"]}
    card = model_card(config, "loss")
    assert "- meters: 3/4, 4/4 (each with at least 50 training windows or a tenth of them; also meters" in card
    assert "- meters: 4/4 (4/4 only, and meters with its bar length such as 2/2)" in model_card(_config(), "loss")
    save_bundle(tmp_path, {k: config[k] for k in ("name", "model_class", "kind", "tools", "hparams")},
                {"w": np.zeros(2)}, card)
    write_card_section(tmp_path, "## Extra", "## Extra\n\nfirst\n")
    write_card_section(tmp_path, "## Extra", "## Extra\n\nsecond\n")
    text = load_bundle(tmp_path).path.joinpath("MODEL_CARD.md").read_text()  # load_bundle checks the sums
    assert text.startswith(card.rstrip("\n")) and text.endswith("\n\n## Extra\n\nsecond\n") and "first" not in text


def test_a_rerun_evaluation_replaces_its_own_card_section_and_keeps_the_others():
    """A MusicVAE card's held-out and test sections are rewritten when an evaluation is rerun
    (a new sampler, a rebuilt cache); the sections written after them (the other split, the
    quality rows, an in-domain estimate) stay, in place. Before, rerunning the held-out
    evaluation cut the card after that section."""
    from bridge.train.families.music_vae_eval import HELD_OUT, TEST_SECTION, card_section, replace_section

    numbers = {"recon_accuracy_teacher_forced": 0.5}
    card = ("# m\n\n## Data\n\nx\n" + card_section({"recon_accuracy_teacher_forced": 0.1}, 10)
            + card_section({"recon_accuracy_teacher_forced": 0.2}, 5, "", TEST_SECTION)
            + "\n## Quality on held-out test files\n\nrows\n")
    held = replace_section(card, HELD_OUT, card_section(numbers, 10, "a note"))
    test = replace_section(held, TEST_SECTION, card_section(numbers, 5, "", TEST_SECTION))
    for out in (held, test):
        assert [line for line in out.splitlines() if line.startswith("## ")] == [
            "## Data", f"## MusicVAE eval (NumPy serving model, {HELD_OUT}, 10 examples)",
            f"## MusicVAE eval (NumPy serving model, {TEST_SECTION}, 5 examples)", "## Quality on held-out test files"]
        assert out.endswith("\n## Quality on held-out test files\n\nrows\n") and "| recon accuracy teacher forced | 0.5000 |" in out
    assert "a note" in test and "0.1000" not in held and "0.2000" in held and "0.2000" not in test
    bare = replace_section("# m\n\n## Data\n\nx\n", TEST_SECTION, card_section(numbers, 5, "", TEST_SECTION))
    assert bare.endswith(card_section(numbers, 5, "", TEST_SECTION)) and bare.startswith("# m\n\n## Data\n\nx\n")
