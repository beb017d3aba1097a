"""The ``soundnet`` task on a tiny world (``conftest.TINY``, the session's tiny backbone as
its teacher): its metrics against a recomputation, a frozen teacher, the student's heads
and padding, the teacher's posteriors by hand, predict on sound files, and bad input.
What every task must do is checked by ``test_contract.py``."""

from __future__ import annotations

import json

import pytest
import torch

from tests.tasks.conftest import (
    one_line_error,
    read_metrics,
    tiny,
    train_refused,
    train_tiny,
    world_wav,
)
from xmodal.audio.encoders import create_encoder
from xmodal.cli import main
from xmodal.engine import load_run
from xmodal.matching.soundnet import SoundNetStudent, backbone_posteriors, object_classes
from xmodal.metrics.classification import mean_average_precision
from xmodal.nn import distillation_loss
from xmodal.world import COLOURS as COLOUR_TABLE
from xmodal.world import SHAPES as SHAPE_TABLE

COLOURS, SHAPES = list(COLOUR_TABLE), list(SHAPE_TABLE)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny("soundnet", tmp_path_factory.mktemp("soundnet-runs"))


def test_metrics_are_the_students_and_teachers_scores_recomputed(run_dir):
    test = read_metrics(run_dir)["test"]
    task, model = load_run(run_dir)
    got = task._collect(model, "test")
    place = got["place"]
    assert test["n_clips"] == len(place) == 8
    student = 100 * float((got["student_places"].argmax(1) == place).double().mean())
    teacher = 100 * float((got["teacher_places"].argmax(1) == place).double().mean())
    assert test["place_acc"] == pytest.approx(student)
    assert test["teacher_place_acc"] == pytest.approx(teacher)
    assert test["student_sounding_mAP"] == pytest.approx(
        100 * mean_average_precision(got["student_objects"].softmax(1), got["sounding"])
    )
    assert test["kl_places"] == pytest.approx(
        float(distillation_loss(got["student_places"], got["teacher_places"])), rel=1e-5
    )
    for key in ("objects", "sounding"):  # what is heard is part of what is seen
        assert bool((got["sounding"] <= got["objects"]).all())
        assert 0 < test[f"{key}_mAP_chance"] < 100
    assert (run_dir / "figures" / "posteriors_val_0.png").is_file()
    assert json.loads((run_dir / "teacher.json").read_text())["config"]["data"]["image_size"] == 64


def test_the_teacher_is_frozen_and_gets_no_gradient(run_dir):
    task, model = load_run(run_dir)
    model.train()
    assert not model.teacher.training and model.student.training
    batch = torch.utils.data.default_collate([task.data("val")[i] for i in range(4)])
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    loss, parts = task.training_step(model, batch)
    loss.backward()
    assert set(parts) == {"kl_objects", "kl_places"}
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None for p in model.student.parameters())
    after = model.teacher.state_dict()  # batch norm did not move either
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_student_heads_average_the_valid_steps_and_padding_changes_nothing():
    torch.manual_seed(0)
    encoder = create_encoder("soundnet", num_layers=4, width=0.25)
    student = SoundNetStudent(encoder, n_objects=30, n_places=8).eval()
    field, stride = encoder.feature_info.receptive_field, encoder.feature_info.stride
    assert (field, stride) == (8222, 1024)
    wave = torch.randn(2, 12000)
    with torch.no_grad():
        out = student(wave)
        assert out["objects"].shape == (2, 30) and out["places"].shape == (2, 8)
        steps = student.encoder.forward_features(wave)  # (2, C, T')
        assert steps.shape[-1] == (12000 - field) // stride + 1
        want = student.heads["places"](steps).mean(-1)
        assert torch.allclose(out["places"], want, atol=1e-6)
        padded = torch.cat([wave, torch.randn(2, 5000)], dim=1)
        again = student(padded, lengths=torch.tensor([12000, 12000]))
        assert torch.allclose(again["objects"], out["objects"], atol=1e-5)
    with pytest.raises(Exception, match="8222"):
        student(torch.randn(1, 8000))  # shorter than one step's receptive field
    # The paper's eight layers: one step per 320,542 samples (20 s at 16 kHz).
    full = SoundNetStudent(create_encoder("soundnet", num_layers=8, width=0.125), 30, 8).eval()
    assert full.encoder.feature_info.receptive_field == 320542
    with torch.no_grad():
        assert full(torch.randn(1, 320542))["places"].shape == (1, 8)


def test_teacher_posteriors_by_hand():
    big = 20.0  # a confident head
    shape = torch.full((1, len(SHAPES) + 1, 2, 2), -big)
    colour = torch.full((1, len(COLOURS) + 1, 2, 2), -big)
    shape[0, 0] = big  # "none" everywhere ...
    shape[0, 0, 0, 0], shape[0, 1 + SHAPES.index("circle"), 0, 0] = -big, big  # ... but here
    colour[0, 1 + COLOURS.index("red")] = big
    shape[0, 0, 1, 1], shape[0, 1 + SHAPES.index("cross"), 1, 1] = -big, big
    colour[0, :, 1, 1] = -big
    colour[0, 1 + COLOURS.index("blue"), 1, 1] = big
    place = torch.tensor([[0.0, 2.0]])
    got = backbone_posteriors({"shape": shape, "colour": colour, "place": place})
    names = object_classes(COLOURS, SHAPES)
    objects = dict(zip(names, got["objects"][0].tolist(), strict=True))
    assert objects["red circle"] == pytest.approx(0.5, abs=1e-4)
    assert objects["blue cross"] == pytest.approx(0.5, abs=1e-4)
    assert got["objects"].sum().item() == pytest.approx(1.0)
    assert torch.allclose(got["places"], place.softmax(1))
    soft = backbone_posteriors({"shape": shape, "colour": colour, "place": place}, 4.0)
    assert torch.allclose(soft["places"], (place / 4).softmax(1))
    with pytest.raises(Exception, match="lacks"):
        backbone_posteriors({"shape": shape, "place": place})


def test_predict_names_a_place_and_objects_and_refuses_a_short_clip(run_dir, tmp_path, capsys):
    wav = world_wav(tmp_path / "a.wav")
    out = tmp_path / "out"
    assert main(["predict", "soundnet", "--run", str(run_dir), str(wav), "--out", str(out)]) == 0
    (record,) = json.loads((out / "predictions.json").read_text())
    assert record["place"] in ("beach", "forest", "city", "desert", "snow", "night", "field",
                               "underwater")  # fmt: skip
    assert len(record["objects"]) == 3
    assert all(o["name"] in object_classes(COLOURS, SHAPES) for o in record["objects"])
    capsys.readouterr()
    short = world_wav(tmp_path / "short.wav", seconds=0.5)
    assert main(["predict", "soundnet", "--run", str(run_dir), str(short), "--out",
                 str(out)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "short.wav" in err and "8000 samples" in err


def test_predict_on_silence_answers_and_on_a_corrupt_file_names_it(run_dir, tmp_path, capsys):
    from xmodal.audio.io import save

    silent = save(tmp_path / "silent.wav", torch.zeros(32000), 16000)
    out = tmp_path / "out"
    assert main(["predict", "soundnet", "--run", str(run_dir), str(silent), "--out",
                 str(out)]) == 0  # fmt: skip
    (record,) = json.loads((out / "predictions.json").read_text())
    assert 0 < record["place_probability"] <= 1  # silence is a sound like any other
    capsys.readouterr()
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert main(["predict", "soundnet", "--run", str(run_dir), str(broken), "--out",
                 str(out)]) == 1  # fmt: skip
    assert "broken.wav" in capsys.readouterr().err


def test_a_teacher_of_another_image_size_is_refused(tmp_path, capsys):
    teacher = train_tiny("backbone", tmp_path / "t", "data.image_size=32", "eval.n_figures=0")
    runs = tmp_path / "runs"
    args = tiny("soundnet", f"model.teacher={teacher}")
    assert main(["train", "soundnet", "--runs-dir", str(runs), *args]) == 1
    assert not any((runs / "soundnet").glob("*"))  # no run left behind
    err = one_line_error(capsys)
    assert "trained with data.image_size=32; this run has data.image_size=64" in err


@pytest.mark.parametrize(
    "override, message",
    [("model.layers=9", "model.layers must be in [1, 8]"),
     ("model.temperature=0", "model.temperature"),
     ("data.clip_seconds=0", "data.clip_seconds"),
     ("eval.transfer=/nowhere", "eval.transfer='/nowhere' is not an ESC-50-layout folder")],
)  # fmt: skip
def test_bad_config_is_one_line(tmp_path, capsys, override, message):
    assert message in train_refused("soundnet", tmp_path, capsys, override)


# ----------------------------------------------------------------------------- transfer


def test_the_linear_probe_recovers_a_separable_set_and_not_a_random_one():
    from xmodal.matching.soundnet import fold_accuracy

    g = torch.Generator().manual_seed(0)
    targets = torch.arange(200) % 4
    folds = (torch.arange(200) // 4) % 5 + 1
    centres = torch.randn(4, 16, generator=g) * 4
    features = centres[targets] + torch.randn(200, 16, generator=g)
    mean, per_fold = fold_accuracy(features, targets, folds)
    assert mean == 100.0 and len(per_fold) == 5
    noise = torch.randn(200, 16, generator=g)
    assert fold_accuracy(noise, targets, folds)[0] < 45  # chance is 25
    with pytest.raises(Exception, match="only fold"):
        fold_accuracy(features, targets, torch.ones(200, dtype=torch.long))


def test_layer_features_are_each_blocks_output_averaged_over_time():
    from xmodal.matching.soundnet import layer_features, layer_names, mfcc_statistics

    torch.manual_seed(0)
    student = SoundNetStudent(create_encoder("soundnet", num_layers=5, width=0.25), 30, 8).eval()
    assert layer_names(student) == ["pool1", "pool2", "conv3", "conv4", "pool5"]
    wave = torch.randn(2, 20000)
    got = layer_features(student, wave)
    x = wave.unsqueeze(1)
    for name, block in zip(layer_names(student), student.encoder.body, strict=True):
        x = block(x)
        assert torch.allclose(got[name], x.mean(-1), atol=1e-6), name
    assert torch.allclose(got["places"], student(wave)["places"], atol=1e-5)
    stats = mfcc_statistics(wave, 16000)
    assert stats.shape == (2, 40) and bool((stats[:, 20:] >= 0).all())  # means, then stds


def test_transfer_reports_every_layer_and_the_mfcc_baseline(run_dir):
    transfer = read_metrics(run_dir)["test"]["transfer"]
    assert list(transfer["layers"]) == ["pool1", "pool2", "conv3", "conv4", "pool5", "objects",
                                        "places"]  # fmt: skip
    assert transfer["best_layer"] in list(transfer["layers"])[:5]
    assert transfer["best_acc"] == max(list(transfer["layers"].values())[:5])
    assert transfer["n_clips"] == 5 * 38 and transfer["n_classes"] == 38
    assert 0 <= transfer["mfcc_acc"] <= 100 and transfer["chance"] == pytest.approx(100 / 38)
    assert (run_dir / "figures" / "transfer_per_layer.png").is_file()


def test_transfer_reads_an_esc50_folder_like_the_world_in_memory(run_dir, tmp_path):
    from xmodal.world import World
    from xmodal.world.export import export

    folder = export(World(seed=0), "esc50", tmp_path / "esc", sizes=5 * 38)
    task, model = load_run(run_dir)
    task.config.eval.transfer = str(folder)
    got = task.transfer(model)
    want = read_metrics(run_dir)["test"]["transfer"]
    assert got["n_clips"] == want["n_clips"] and got["source"] == str(folder)
    # 16-bit files, so the features move a little; the probes agree within a clip or two.
    for name, acc in want["layers"].items():
        assert abs(got["layers"][name] - acc) <= 2 * 100 / 38, name


# ----------------------------------------------------------------------------- real frames


def test_a_torchvision_teacher_on_an_av_manifest_folder(tmp_path, capsys):
    """Real data: frames and sounds from a manifest, taught by torchvision classifiers
    whose state dicts are files (read without unpickling code); the run keeps their
    weights, so eval and predict need neither file."""
    from torchvision.models import resnet18

    from xmodal.world import World
    from xmodal.world.export import export

    root = export(World(seed=0, clip_seconds=2.0), "av-manifest", tmp_path / "av",
                  sizes={"train": 16, "val": 8, "test": 8})  # fmt: skip
    torch.manual_seed(0)
    objects, places = resnet18(num_classes=5), resnet18(num_classes=3)
    torch.save(objects.state_dict(), tmp_path / "objects.pth")
    torch.save(places.state_dict(), tmp_path / "places.pth")
    d = train_tiny(
        "soundnet", tmp_path / "runs", "data.name=av-manifest", f"data.root={root}",
        "data.clip_seconds=2.0", "model.teacher=null", "model.teacher_arch=resnet18",
        f"model.teacher_weights={tmp_path / 'objects.pth'}", "model.place_teacher_arch=resnet18",
        f"model.place_teacher_weights={tmp_path / 'places.pth'}", "eval.transfer=null",
    )  # fmt: skip
    test = read_metrics(d)["test"]
    assert {"kl_objects", "kl_places", "objects_agreement", "places_agreement"} <= set(test)
    assert "place_acc" not in test  # the teacher's classes are not the manifest's labels
    assert json.loads((d / "teacher.json").read_text())["torchvision"]["places"] == {
        "arch": "resnet18", "num_classes": 3}  # fmt: skip
    (tmp_path / "objects.pth").unlink()  # the run holds the teacher's weights
    task, model = load_run(d)
    got = model.teacher.objects.state_dict()
    assert all(torch.equal(got[k], v) for k, v in objects.state_dict().items())
    assert task.object_names() == [f"class {k}" for k in range(5)]
    out = tmp_path / "out"
    wav = world_wav(tmp_path / "a.wav")
    assert main(["predict", "soundnet", "--run", str(d), str(wav), "--out", str(out)]) == 0
    (record,) = json.loads((out / "predictions.json").read_text())
    assert record["place"] in ("class 0", "class 1", "class 2")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.teacher_arch=resnet18"], "SoundNet needs one teacher"),
        (["model.teacher=null"], "SoundNet needs one teacher"),
        (["model.place_teacher_arch=resnet18"], "goes with model.teacher_arch"),
        (["data.name=av-manifest"], "needs data.root"),
    ],
)
def test_teacher_choices_are_checked(tmp_path, capsys, overrides, message):
    assert message in train_refused("soundnet", tmp_path, capsys, *overrides)


def test_teacher_weights_that_do_not_fit_are_named(tmp_path):
    from torchvision.models import resnet18

    from xmodal.errors import DataError, ParameterError
    from xmodal.matching.soundnet import torchvision_classifier

    torch.save(resnet18(num_classes=4).state_dict(), tmp_path / "r18.pth")
    model, n = torchvision_classifier("resnet18", str(tmp_path / "r18.pth"))
    assert n == 4 and model.fc.out_features == 4
    with pytest.raises(DataError, match="r18.pth' do not fit resnet34"):
        torchvision_classifier("resnet34", str(tmp_path / "r18.pth"))
    with pytest.raises(DataError, match="missing.pth' do not exist"):
        torchvision_classifier("resnet18", str(tmp_path / "missing.pth"))
    with pytest.raises(ParameterError, match="unknown torchvision model 'resnet7'"):
        torchvision_classifier("resnet7", str(tmp_path / "r18.pth"))
