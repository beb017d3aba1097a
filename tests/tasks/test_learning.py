"""Each task learns: a short training on the world gets at least twice the chance level
of the task's own metric (slow: up to two minutes each on 2 CPU cores; `-m slow`).

The chance levels: what the task reports beside its metric (caption: attention grounding's
``grounding_chance``; VQA: always the most common answer, ``majority_accuracy``;
text-to-image: ``retrieval_chance``; word2vec: ``categories.chance``) or, for rankings,
``K / N`` (a random order of ``N`` candidates puts the right one in the top ``K``) and, for
a language model, the perplexity of the uniform guess, the vocabulary's size (compared as
1 / perplexity, the geometric mean of the probability given to the right token).
"""

from __future__ import annotations

import json

import pytest

from tests.tasks.conftest import ENGINE

pytestmark = pytest.mark.slow

QUICK = [*ENGINE, "data.num_workers=0", "trainer.enable_model_summary=false"]

# Per task: overrides of a short training, then (metric, chance) read from metrics.json
# and the run folder.
CASES = {
    "backbone": (  # the shape under each object cell, the last attribute learnt
        ["data.train_size=8000", "data.test_size=200", "trainer.max_epochs=3",
         "eval.n_figures=0"],
        lambda m, d: (m["test"]["shape_acc"], m["test"]["chance"]["shape_acc"]),
    ),
    "caption": (
        ["model.backbone=null", "optim.encoder_lr=null", "data.train_size=1500",
         "data.test_size=200", "trainer.max_epochs=3", "eval.meteor=false", "eval.n_figures=0"],
        lambda m, d: (m["test"]["attention_grounding"], m["test"]["grounding_chance"]),
    ),
    "retrieval": (
        ["model.backbone=null", "optim.encoder_lr=null", "data.train_size=1500",
         "data.test_size=200", "trainer.max_epochs=3", "eval.n_figures=0"],
        lambda m, d: (m["test"]["t2i_R@10"] / 100, 10 / m["test"]["n_images"]),
    ),
    "recipe": (
        ["data.train_size=1500", "data.test_size=500", "trainer.max_epochs=3",
         "eval.sizes=[100]", "eval.draws=2", "eval.n_figures=0"],
        lambda m, d: (m["test"]["100"]["im2recipe_R@10"] / 100, 10 / 100),
    ),
    "vqa": (
        ["data.train_size=12000", "data.test_size=1000", "trainer.max_epochs=4",
         "model.pretrain_steps=300"],
        lambda m, d: (m["test"]["accuracy"] / 100, m["test"]["majority_accuracy"] / 100),
    ),
    "text2image": (
        ["data.train_size=1000", "data.test_size=200", "trainer.max_epochs=2",
         "model.pretrain_steps=200", "model.aux_pretrain_steps=200", "eval.n_captions=200",
         "eval.evaluator_images=500", "eval.classifier_steps=300", "eval.retrieval_steps=300"],
        lambda m, d: (m["test"]["retrieval_p1"] / 100, m["test"]["retrieval_chance"] / 100),
    ),
    "gpt": (
        ["data.train_size=500", "trainer.max_epochs=2", "eval.n_samples=0"],
        lambda m, d: (
            1 / m["test"]["perplexity"],
            1 / (len(json.loads((d / "chars.json").read_text())["chars"]) + 1),  # + the unknown one
        ),
    ),
    "word2vec": (
        ["data.train_size=5000"],
        lambda m, d: (m["test"]["categories"]["mean"], m["test"]["categories"]["chance"]),
    ),
    "soundnet": (  # the place from sound alone; its teacher: TEACHER, trained first
        ["data.train_size=4000", "data.test_size=200", "trainer.max_epochs=3",
         "eval.transfer=null", "eval.n_figures=0"],
        lambda m, d: (m["test"]["place_acc"] / 100, m["test"]["place_chance"] / 100),
    ),
    "localize": (  # the map's peak on a sounding object; its backbone: TEACHER, trained first
        ["data.train_size=3000",
         "data.test_size=200", "trainer.max_epochs=2", "eval.n_figures=0"],
        lambda m, d: (m["test"]["exact"]["pointing"] / 100,
                      m["test"]["exact"]["pointing_chance"] / 100),
    ),
    "scene-sound": (
        ["model.backbone=null", "optim.encoder_lr=null", "data.train_size=1500",
         "data.test_size=200", "trainer.max_epochs=2", "eval.prototype_clips=1500",
         "eval.n_figures=0"],
        lambda m, d: (m["test"]["place_acc"] / 100, m["test"]["place_chance"] / 100),
    ),
}  # fmt: skip
# SoundNet's teacher and localize's backbone: a backbone trained briefly (its defaults' run
# takes minutes).
TEACHER = ["data.train_size=3000", "data.test_size=100", "trainer.max_epochs=2",
           "eval.n_figures=0"]  # fmt: skip


def test_every_task_has_a_learning_case():
    from tests.tasks.conftest import TINY

    assert set(CASES) == set(TINY)


@pytest.mark.parametrize("task", sorted(CASES))
def test_training_beats_chance(task, tmp_path):
    from xmodal.engine import train

    overrides, read = CASES[task]
    if task in ("soundnet", "localize"):  # a random encoder's map learns the ambience
        teacher = train("backbone", runs_dir=tmp_path, overrides=[*QUICK, *TEACHER])
        key = "model.teacher" if task == "soundnet" else "model.backbone"
        overrides = [*overrides, f"{key}={teacher.run_dir}"]
    run = train(task, runs_dir=tmp_path, overrides=[*QUICK, *overrides])
    score, chance = read(run.metrics, run.run_dir)
    assert 0 < chance < 0.5
    assert score >= 2 * chance, (score, chance)  # twice the chance level, at least
