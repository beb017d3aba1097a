"""The ``text2image`` task through the engine on a tiny world (``conftest.TINY``): training
changes both networks, predict writes one grid, the retrieval run as a sentence encoder (an
upstream run), the matching and TAC-GAN terms, old runs without them, one GAN step, the
pre-training's random state, the scenes rendered once, and the config's errors. Eval giving
metrics.json again, resume and the CLI's errors: tests/tasks/test_contract.py."""

from __future__ import annotations

import json

import pytest
import torch

from tests.tasks.conftest import NO_FIGURES, read_log, tiny_run, train_tiny
from xmodal.data.scenes import collate_pairs
from xmodal.engine.module import ManualStep
from xmodal.errors import DataError, ParameterError
from xmodal.tasks.text2image import (
    Text2ImageConfig,
    Text2ImageDataConfig,
    Text2ImageEvalConfig,
    Text2ImageModelConfig,
    Text2ImageOptimConfig,
    Text2ImageTask,
)
from xmodal.translation.text_to_image import Discriminator, TextToImageGAN


def test_a_frozen_sentence_encoder_gets_no_gradients_and_stays_in_eval_mode():
    model = TextToImageGAN(10, word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                           ngf=4, ndf=4, image_size=32, freeze_text=True)  # fmt: skip
    model.train()
    assert model.generator.training and not model.text.training
    assert not any(p.requires_grad for p in model.text.parameters())
    task = Text2ImageTask(Text2ImageConfig())
    opt_d, opt_g = task.configure_optimizers(model)
    in_d = {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert in_d == {id(p) for p in model.discriminator.parameters()}
    unfrozen = TextToImageGAN(10, word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                              ngf=4, ndf=4, image_size=32)  # fmt: skip
    opt_d, _ = task.configure_optimizers(unfrozen)
    in_d = {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert {id(p) for p in unfrozen.text.parameters()} <= in_d  # trained with D


def _step_task(**model):
    """A text2image task, its (untrained) model and one batch of 4 world pairs at 32x32."""
    from xmodal.text.vocab import Vocabulary

    config = Text2ImageConfig(
        model=Text2ImageModelConfig(word_dim=4, hidden=4, text_dim=8, proj_dim=4, noise_dim=6,
                                    ngf=4, ndf=4, aux_stride=4, augment="none", **model),
        data=Text2ImageDataConfig(train_size=4, batch_size=4, image_size=32),
    )  # fmt: skip
    task = Text2ImageTask(config)
    scenes = task.scenes.first("train", 4)
    task.vocab = Vocabulary.build([c for s in scenes for c in s.captions], min_freq=1)
    torch.manual_seed(0)
    model = task.build_model().train()
    pairs = task.world_data("train")
    return task, model, collate_pairs([pairs[k] for k in (0, 5, 10, 15)])


def test_the_generator_step_leaves_the_discriminators_gradients_alone():
    task, model, batch = _step_task()
    D = model.discriminator
    opt_d, opt_g = task.configure_optimizers(model)
    seen: list[dict] = []

    class Step(ManualStep):  # the engine's step, recording D's gradients after each backward
        optimizers = (opt_d, opt_g)

        def __init__(self):
            pass

        def backward(self, loss):
            loss.backward()
            seen.append({n: p.grad.clone() for n, p in D.named_parameters()
                         if p.grad is not None})  # fmt: skip

        def clip_gradients(self, optimizer):
            pass

    g_before = [p.detach().clone() for p in model.generator.parameters()]
    task.training_step(model, batch, Step())
    after_d, after_g = seen
    assert after_d and after_d.keys() == after_g.keys()  # D's loss reached D, ...
    for name, grad in after_d.items():  # ... the generator's loss did not
        assert torch.equal(grad, after_g[name]), name
    assert all(p.requires_grad for p in D.parameters())  # unfrozen after the step
    changed = [not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters(),
                                                    strict=True)]  # fmt: skip
    assert all(changed)  # ... and G learnt through the frozen D


def test_the_scenes_are_rendered_once_for_every_use(monkeypatch):
    task, _, _ = _step_task()
    calls = []
    render = type(task.world).scene

    def counted(world, split, index, **kwargs):
        calls.append((split, index))
        return render(world, split, index, **kwargs)

    monkeypatch.setattr(type(task.world), "scene", counted)
    task.scenes.clear()
    pairs = task.world_data("train", 6)
    assert len(pairs) == 6 * task.world.config.n_captions
    images, scenes = task.scenes.images("train", 6)
    task.world_data("train", 3)
    assert sorted(calls) == [("train", i) for i in range(6)]  # each scene once
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.uint8
    item = pairs[task.world.config.n_captions + 1]  # scene 1, its second caption
    assert item["index"] == 1 and torch.equal(item["image"], images[1].float() / 255)
    assert item["tokens"].tolist() == task.vocab.encode(scenes[1].captions[1], max_len=24)


def test_config_errors_name_the_value():
    with pytest.raises(ParameterError, match="model.text_encoder must be one of"):
        Text2ImageModelConfig(text_encoder="bert")
    with pytest.raises(ParameterError, match="match_weight needs a joint embedding"):
        Text2ImageModelConfig(text_encoder="joint", match_weight=1.0)
    with pytest.raises(ParameterError, match="model.ngf must be an integer >= 1. Found: 0"):
        Text2ImageModelConfig(ngf=0)
    with pytest.raises(ParameterError, match="model.beta must be in"):
        Text2ImageModelConfig(beta=2.0)
    with pytest.raises(ParameterError, match="data.image_size must be a power of two"):
        Text2ImageDataConfig(image_size=48)
    with pytest.raises(ParameterError, match="optim.beta1 must be in"):
        Text2ImageOptimConfig(beta1=1.0)
    for key, bad in (("upsample", "bicubic"), ("d_norm", "group"), ("gan_loss", "wgan"),
                     ("augment", "colour"), ("d_cond", "film")):  # fmt: skip
        with pytest.raises(ParameterError, match=f"model.{key} must be one of.*{bad}"):
            Text2ImageModelConfig(**{key: bad})
    for key, bad, says in (("aux_weight", -1.0, "must be .*Found: -1"),
                           ("text_aux_weight", -0.5, "must be .*Found: -0.5"),
                           ("aux_fake", 1, "must be True or False. Found: 1"),
                           ("aux_pretrain_lr", 0.0, "must be .*Found: 0"),
                           ("aux_pretrain_steps", -5, "must be .*Found: -5")):  # fmt: skip
        with pytest.raises(ParameterError, match=f"model.{key} {says}"):
            Text2ImageModelConfig(**{key: bad})
    with pytest.raises(ParameterError, match="aux_weight needs single-object scenes"):
        Text2ImageConfig(model=Text2ImageModelConfig(aux_weight=1.0),
                         data=Text2ImageDataConfig(objects=2))  # fmt: skip
    with pytest.raises(
        ParameterError, match="eval.n_captions must be an integer >= 100. Found: 50"
    ):
        Text2ImageEvalConfig(n_captions=50)
    assert Text2ImageConfig().trainer.max_epochs >= 1


# ------------------------------------------------------------------ through the engine


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread):
    return tiny_run("text2image", tmp_path_factory.mktemp("runs"))


def test_training_through_the_engine_changes_both_networks(run):
    from xmodal.engine.run import load_run

    task, model = load_run(run.run_dir)
    torch.manual_seed(run.config.seed)  # the engine seeds before build_model
    start = task.build_model()
    for part in ("generator", "discriminator", "text"):  # the text: by its pre-training
        before = torch.cat([p.flatten() for p in getattr(start, part).parameters()])
        after = torch.cat([p.flatten() for p in getattr(model, part).parameters()])
        assert not torch.allclose(before, after), part
    assert not any(p.requires_grad for p in model.text.parameters())  # frozen
    assert run.metrics["train"]["steps"] == 2 * 10  # 40 pairs / 4: two optimizer steps each
    test = run.metrics["test"]
    percents = ("attribute_accuracy", "shape_accuracy", "colour_accuracy",
                "classifier_real_accuracy", "retrieval_p1")  # fmt: skip
    for key in percents:
        assert 0.0 <= test[key] <= 100.0, key
    assert test["attribute_accuracy"] <= min(test["shape_accuracy"], test["colour_accuracy"])
    for key in ("diversity", "diversity_real"):  # RMS distance of images in [0, 1]
        assert 0.0 <= test[key] <= 1.0, key
    assert test["retrieval_chance"] == 1.0
    assert (run.run_dir / "evaluator.pt").is_file()
    assert (run.run_dir / "figures" / "epochs" / "epoch-000.png").is_file()
    assert "epoch-000.png" in (run.run_dir / "report.html").read_text()
    assert (run.run_dir / "figures" / "samples.png").is_file()


def test_predict_writes_a_grid_and_reports_unknown_words(run, tmp_path):
    from xmodal.engine.run import predict

    out = tmp_path / "grid.png"
    records = predict(run.run_dir, ["a large red zebra", "a circle"], tmp_path, n=3, seed=1,
                      out_file=out)  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert records[0]["unknown_words"] == ["zebra"] and "<unk>: zebra" in records[0]["text"]
    assert records[1]["unknown_words"] == []
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert saved[0]["files"] == [str(out)]


def test_predict_cli_takes_out_as_the_grid_file(run, tmp_path, capsys):
    from xmodal.cli import main

    out = tmp_path / "g.png"
    code = main(["predict", "text2image", "--run", str(run.run_dir), "a blue star", "-n", "2",
                 "--seed", "3", "--out", str(out)])  # fmt: skip
    assert code == 0 and out.is_file()
    assert "2 images in" in capsys.readouterr().out


def test_predict_bad_input(run, tmp_path):
    from xmodal.engine.run import predict

    with pytest.raises(ParameterError, match="has no words"):
        predict(run.run_dir, ["  "], tmp_path)
    with pytest.raises(ParameterError, match="has no words"):
        predict(run.run_dir, ["?!"], tmp_path)
    with pytest.raises(ParameterError, match="-n must be an integer >= 1. Found: 0"):
        predict(run.run_dir, ["a red circle"], tmp_path, n=0)
    with pytest.raises(ParameterError, match="must be a .png file"):
        predict(run.run_dir, ["a red circle"], tmp_path, out_file=tmp_path / "x.jpg")


def test_text_run_takes_a_retrieval_runs_vocabulary_and_frozen_text_encoder(tmp_path):
    from xmodal.engine.run import load_run, predict

    retrieval = train_tiny("retrieval", tmp_path, NO_FIGURES)
    run = tiny_run("text2image", tmp_path, f"model.text_run={retrieval}")
    assert (run.run_dir / "text_encoder.json").is_file()
    assert (run.run_dir / "vocab.json").read_text() == (retrieval / "vocab.json").read_text()
    _, source = load_run(retrieval)
    _, model = load_run(run.run_dir)
    for (name, a), b in zip(source.text.state_dict().items(), model.text.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.equal(a, b), name  # frozen: exactly the retrieval run's weights
    records = predict(run.run_dir, ["a red circle"], tmp_path / "p", n=2)
    assert records[0]["unknown_words"] == []
    # The engine checks the upstream run before anything starts.
    with pytest.raises(DataError, match="is not a finished 'retrieval' run"):
        tiny_run("text2image", tmp_path, f"model.text_run={run.run_dir}")


def test_the_matching_loss_trains_the_generator_towards_its_caption(tmp_path):
    run = tiny_run("text2image", tmp_path, "model.match_weight=1.0")
    values = [float(r["train/g_match_epoch"]) for r in read_log(run.run_dir)
              if r.get("train/g_match_epoch")]  # fmt: skip
    assert values and all(v > 0 for v in values)  # logged, a cross entropy over the batch
    plain = tiny_run("text2image", tmp_path, "model.match_weight=0")
    rows = read_log(plain.run_dir)
    assert rows and "train/g_match_epoch" not in rows[0]  # not a column of the log


def test_the_auxiliary_classifiers_train_on_real_labels_and_judge_the_fakes(tmp_path):
    from xmodal.engine.run import load_run

    run = tiny_run("text2image", tmp_path, "model.aux_weight=1.0", "model.aux_fake=false")
    rows = read_log(run.run_dir)
    for key in ("d_aux_colour", "d_aux_shape", "g_aux_colour", "g_aux_shape"):
        values = [float(r[f"train/{key}_epoch"]) for r in rows if r.get(f"train/{key}_epoch")]
        assert values and all(v >= 0 for v in values), key  # cross entropies
    task, model = load_run(run.run_dir)  # the heads are saved and rebuilt with the run
    assert model.discriminator.aux_classes == (6, 5)
    torch.manual_seed(run.config.seed)
    start = task.build_model()
    for a, b in zip(start.discriminator.aux.parameters(), model.discriminator.aux.parameters(),
                    strict=True):  # fmt: skip
        assert not torch.equal(a, b)  # trained
    plain = tiny_run("text2image", tmp_path, "model.aux_weight=0")
    assert len(load_run(plain.run_dir)[1].discriminator.aux) == 0
    # A run saved before the option existed (no aux_weight in its config) has no heads.
    saved = plain.run_dir / "config.yaml"
    lines = saved.read_text().splitlines(keepends=True)
    saved.write_text("".join(line for line in lines if "aux_weight:" not in line))
    assert len(load_run(plain.run_dir)[1].discriminator.aux) == 0
    # One saved before the "generated" class (no aux_fake) is rebuilt with K classes.
    meta = json.loads((run.run_dir / "model.json").read_text())
    del meta["config"]["model"]["aux_fake"]
    (run.run_dir / "model.json").write_text(json.dumps(meta))
    saved = run.run_dir / "config.yaml"
    lines = saved.read_text().splitlines(keepends=True)
    saved.write_text("".join(line for line in lines if "aux_fake:" not in line))
    assert load_run(run.run_dir)[1].discriminator.aux_classes == (6, 5)


def test_the_generated_class_of_the_classifiers_is_trained_on_fakes(tmp_path):
    from xmodal.engine.run import load_run

    run = tiny_run("text2image", tmp_path)  # the default: K+1
    rows = read_log(run.run_dir)
    key = "train/d_aux_generated_epoch"
    values = [float(r[key]) for r in rows if r.get(key)]
    assert values and all(v > 0 for v in values)  # the "generated" class's cross entropy
    _, model = load_run(run.run_dir)
    assert model.discriminator.aux_classes == (7, 6)  # colours + 1, shapes + 1


def test_pretraining_the_classifiers_trains_only_their_path_and_keeps_the_global_seed():
    config = Text2ImageConfig(
        model=Text2ImageModelConfig(aux_weight=1.0, aux_pretrain_steps=3),
        data=Text2ImageDataConfig(train_size=8, batch_size=4, image_size=32),
    )
    task = Text2ImageTask(config)
    torch.manual_seed(0)
    d = Discriminator(text_dim=8, proj_dim=4, ndf=4, image_size=32, norm="spectral",
                      cond="projection", aux_classes=(6, 5), aux_stride=4)  # fmt: skip
    before = {k: v.clone() for k, v in d.state_dict().items()}
    state = torch.random.get_rng_state()
    task._pretrain_aux(d)
    assert torch.equal(torch.random.get_rng_state(), state)  # the GAN's draws are unchanged
    after = {k: v.clone() for k, v in d.state_dict().items()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # encode.0 and encode.2 (stride 4) and the heads learn; the layers above do not
    trained = {k.split(".parametrizations")[0] for k in changed if k.endswith("original")}
    assert trained == {"encode.0", "encode.2", "aux.0", "aux.1"}
    assert set(task.aux_pretrain_log) == {"seconds", "colour", "shape"}
    # model.aux_pretrain_lr replaces D's learning rate there
    faster = Text2ImageTask(Text2ImageConfig(
        model=Text2ImageModelConfig(aux_weight=1.0, aux_pretrain_steps=3, aux_pretrain_lr=1e-2),
        data=config.data,
    ))  # fmt: skip
    d.load_state_dict(before)
    faster._pretrain_aux(d)
    again = d.state_dict()
    assert not torch.equal(again["aux.1.parametrizations.weight.original"],
                           after["aux.1.parametrizations.weight.original"])  # fmt: skip


def test_figures_are_the_sample_grid_and_predict_options_have_their_defaults(run):
    from matplotlib.figure import Figure

    from xmodal.engine.options import option_defaults
    from xmodal.engine.run import load_run

    task, model = load_run(run.run_dir)
    figures = task.figures(model)
    assert list(figures) == ["samples"] and isinstance(figures["samples"], Figure)
    texts = [t.get_text() for t in figures["samples"].axes[0].texts]
    assert len(texts) == 8 and texts[0] == "a large red circle"  # a row per grid caption
    task.config.eval.n_figures = 0
    assert task.figures(model) == {}
    assert option_defaults(Text2ImageTask.PredictOptions) == {"n": 8, "seed": 0}
    assert [(u.key, u.task, u.required) for u in Text2ImageTask.upstream] == [
        ("model.text_run", "retrieval", False)
    ]


def test_predict_draws_eight_images_a_caption_by_default(run, tmp_path):
    from xmodal.engine.run import predict

    records = predict(run.run_dir, ["a small green square"], tmp_path)
    (path,) = records[0]["files"]
    assert path.endswith("a_small_green_square.png") and records[0]["text"].startswith("8 images")
