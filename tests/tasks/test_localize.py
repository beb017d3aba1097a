"""The ``localize`` task on a tiny world (``conftest.TINY``): its metrics recomputed from
its maps, the negatives and the labelled share of the world's clips, the real layouts as
data, predict, and bad input. What every task must do is checked by ``test_contract.py``."""

from __future__ import annotations

import pytest
import torch

from tests.tasks.conftest import (
    one_line_error,
    read_metrics,
    tiny,
    train_tiny,
    world_png,
    world_wav,
)
from xmodal.cli import main
from xmodal.engine import load_run
from xmodal.metrics.localization import binarize_maps, ciou, ciou_summary, map_pointing


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny("localize", tmp_path_factory.mktemp("localize-runs"))


def test_metrics_are_those_of_the_maps(run_dir):
    test = read_metrics(run_dir)["test"]
    task, model = load_run(run_dir)
    maps = task.maps(model, "test")
    world = task.world
    truth = torch.stack([world.scene("test", i, audio=False).sounding_mask.float()
                         for i in range(8)])  # fmt: skip
    assert torch.equal(maps["sounding"], truth)
    assert maps["own"].shape == (8, 64, 64)  # at the image's size
    for name, rule in (("public", "median"), ("exact", "half")):
        summary = ciou_summary(ciou(binarize_maps(maps["own"], rule), truth))
        assert test[name]["ciou@0.5"] == pytest.approx(summary["ciou@0.5"])
        assert test[name]["auc"] == pytest.approx(summary["auc"])
    pointing = 100 * float(map_pointing(maps["own"], truth).double().mean())
    assert test["exact"]["pointing"] == pytest.approx(pointing)
    chance = 100 * float((truth > 0).flatten(1).double().mean(1).mean())
    assert test["exact"]["pointing_chance"] == pytest.approx(chance)
    # A detector of every object that does not listen: right wherever all objects sound.
    objects = torch.stack([world.scene("test", i, audio=False).masks.any(0).float()
                           for i in range(8)])  # fmt: skip
    every = ciou(binarize_maps(objects, "half"), truth)
    assert test["baselines"]["all_objects"]["exact"]["ciou@0.5"] == pytest.approx(
        100 * float((every >= 0.5).double().mean()))  # fmt: skip
    assert set(test["negatives"]) == {"silence", "ambience", "other_scene", "all"}
    assert test["n_clips"] == 8
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert figures == ["localization_test.png", "negatives_test.png"]


def test_negative_sounds_have_no_source_in_the_picture():
    from xmodal.data.sounds import LocalizationScenes
    from xmodal.world import World

    world = World(seed=0)
    data = LocalizationScenes(world, "test", size=30, negatives=True)
    for i in range(30):
        item = data[i]
        scene = world.scene("test", i)
        other = world.scene("test", item["other_index"])
        assert item["other_index"] != i
        heard = {(other.objects[k].colour, other.objects[k].shape) for k in other.sounding}
        assert not heard & {(o.colour, o.shape) for o in scene.objects}
        assert torch.equal(item["other_audio"], other.audio)
        assert torch.equal(item["ambience"], scene.ambience)  # the place alone
        assert torch.equal(item["sounding_mask"], scene.sounding_mask.float())


def test_the_labelled_share_is_drawn_once_from_the_seed():
    from xmodal.data.sounds import LocalizationScenes
    from xmodal.world import World

    world = World(seed=0)
    a = LocalizationScenes(world, "train", size=200, labelled_fraction=0.1, seed=3)
    b = LocalizationScenes(world, "train", size=200, labelled_fraction=0.1, seed=3)
    c = LocalizationScenes(world, "train", size=200, labelled_fraction=0.1, seed=4)
    assert int(a.labelled.sum()) == 20
    assert torch.equal(a.labelled, b.labelled) and not torch.equal(a.labelled, c.labelled)
    assert [a[i]["labelled"] for i in range(200)] == a.labelled.tolist()


@pytest.mark.parametrize("layout", ["flickr-soundnet", "vggss"])
def test_a_real_layout_is_data(layout, tmp_path):
    from xmodal.world import World
    from xmodal.world.export import export

    root = export(
        World(seed=0), layout, tmp_path / layout, sizes={"train": 16, "val": 8, "test": 8}
    )
    run = train_tiny("localize", tmp_path / "runs", f"data.name={layout}", f"data.root={root}",
                     "eval.n_figures=0")  # fmt: skip
    test = read_metrics(run)["test"]
    assert test["n_clips"] == 8
    assert set(test["negatives"]) == {"silence", "other_scene", "all"}  # no ambience alone
    assert set(test["baselines"]) == {"centre"}  # no object masks in a real layout
    task, model = load_run(run)
    maps = task.maps(model, "test")
    boxes = torch.zeros(8, 64, 64)  # the sounding objects' boxes, as the layouts store them
    for i in range(8):
        scene = task.world.scene("test", i, audio=False)
        for k in scene.sounding:
            ys, xs = torch.nonzero(scene.masks[k], as_tuple=True)
            boxes[i, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 1
    assert torch.equal(maps["sounding"], boxes)


def test_predict_writes_the_overlay(run_dir, tmp_path, capsys):
    frame = world_png(tmp_path / "frame.png")
    sound = world_wav(tmp_path / "clip.wav", seconds=1.0)
    silent = tmp_path / "silence.wav"
    from xmodal.audio.io import save

    save(silent, torch.zeros(16000), 16000)
    out = tmp_path / "out"
    assert main(["predict", "localize", "--run", str(run_dir), str(frame), str(sound),
                 str(frame), str(silent), "--out", str(out)]) == 0  # fmt: skip
    import json

    records = json.loads((out / "predictions.json").read_text())
    assert len(records) == 2
    assert (out / "frame_localized.png").is_file() and (out / "frame-1_localized.png").is_file()
    assert all(0 <= v < 64 for v in records[0]["peak"])
    assert 0 <= records[1]["confidence"] <= 1  # silence: a map all the same, not an error
    capsys.readouterr()
    assert main(["predict", "localize", "--run", str(run_dir), str(frame), "--out", str(out)]) == 1
    assert "pairs" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.labelled_fraction=2", "labelled_fraction must be in"),
        ("data.name=vggss", "needs data.root"),
        ("model.background=lvs", "model.background"),
        ("model.map_stride=3", "map_stride"),
    ],
)
def test_bad_config(override, message, tmp_path, capsys):
    assert (
        main(["train", "localize", "--runs-dir", str(tmp_path), *tiny("localize", override)]) == 1
    )
    assert message in one_line_error(capsys)


def test_a_clip_without_a_source_teaches_the_supervised_term_nothing():
    from xmodal.audio.encoders import create_encoder as audio_encoder
    from xmodal.referencing.sound_source import SoundSourceLocalizer, localization_losses
    from xmodal.vision.encoders import create_encoder

    torch.manual_seed(0)
    audio = audio_encoder("vggish", width=0.125)
    model = SoundSourceLocalizer(create_encoder("small-cnn", channels=8), audio, embed_dim=8)
    model.eval()
    images, wave = torch.rand(3, 3, 32, 32), torch.randn(3, 16000) * 0.1
    masks = torch.zeros(3, 32, 32)
    masks[0, :8, :8] = masks[2, 8:, 8:] = 1  # clip 1 has no sounding object
    with torch.no_grad():
        all_three, _ = localization_losses(model, images, wave, masks, objective="supervised")
        two, _ = localization_losses(model, images[[0, 2]], wave[[0, 2]], masks[[0, 2]],
                                     objective="supervised")  # fmt: skip
    assert float(all_three) == pytest.approx(float(two))
