"""The ``scene-sound`` task on a tiny world (``conftest.TINY``): its metrics recomputed
from the embeddings, L3's correspondence pairs and loss, the threshold and the place
prototypes by hand, the av-manifest folder as data, predict, and bad input. What every
task must do is checked by ``test_contract.py``."""

from __future__ import annotations

import json

import pytest
import torch

from tests.tasks.conftest import one_line_error, read_metrics, tiny, train_tiny, world_wav
from xmodal.cli import main
from xmodal.engine import load_run
from xmodal.errors import DataError
from xmodal.matching.audiovisual import avc_loss, correspondence_pairs, nearest_place
from xmodal.metrics.classification import best_threshold


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny("scene-sound", tmp_path_factory.mktemp("scene-sound-runs"))


def test_metrics_are_those_of_the_embeddings(run_dir):
    from xmodal.metrics.retrieval import retrieval_metrics

    test = read_metrics(run_dir)["test"]
    task, model = load_run(run_dir)
    img, aud, places = task._embed(model, "test")
    world = task.world  # the places are the scenes'
    assert places.tolist() == [world.config.places.index(world.scene("test", i, audio=False).place)
                               for i in range(8)]  # fmt: skip
    sims = img @ aud.T
    assert test["a2i_R@1"] == pytest.approx(retrieval_metrics(sims, torch.arange(8))["t2i_R@1"])
    top = sims.argmax(0)  # each sound's nearest frame
    semantic = 100 * float((places[top] == places).double().mean())
    assert test["semantic"]["a2i_R@1"] == pytest.approx(semantic)
    guess = nearest_place(aud, task.prototypes(model))
    assert test["place_acc"] == pytest.approx(100 * float((guess == places).double().mean()))
    scores, labels = task._correspondence(model, img, aud)
    right = ((scores > test["correspondence_threshold"]).float() == labels).double().mean()
    assert test["correspondence_acc"] == pytest.approx(100 * float(right))
    assert labels.tolist() == [1.0] * 8 + [0.0] * 8 and test["n_clips"] == 8
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert figures == ["joint_space_test.png", "sound_to_frames_test.png"]


def test_correspondence_negatives_never_come_from_the_same_clip():
    for seed in range(50):
        frames, sounds, labels = correspondence_pairs(5, torch.Generator().manual_seed(seed))
        assert labels.tolist() == [1] * 5 + [0] * 5
        assert torch.equal(frames[:5], sounds[:5])  # positives: its own sound
        assert bool((frames[5:] != sounds[5:]).all())  # negatives: another clip's
        assert sorted(sounds[5:].tolist()) == list(range(5))  # each sound used once
    with pytest.raises(Exception, match="at least 2 clips"):
        correspondence_pairs(1)


def test_avc_loss_is_the_cross_entropy_of_the_fusion_head():
    from xmodal.audio.encoders import create_encoder as audio_encoder
    from xmodal.matching.audiovisual import AudioVisualEmbedding
    from xmodal.vision.encoders import create_encoder

    torch.manual_seed(0)
    model = AudioVisualEmbedding(create_encoder("small-cnn", channels=8),
                                 audio_encoder("vggish", width=0.125), embed_dim=8,
                                 objective="avc").eval()  # fmt: skip
    img = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    aud = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    pairs = correspondence_pairs(4, torch.Generator().manual_seed(1))
    loss, accuracy = avc_loss(model, img, aud, pairs)
    logits = model.fusion(torch.cat([img[pairs[0]], aud[pairs[1]]], dim=1))
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, pairs[2])))
    assert accuracy == pytest.approx(float((logits.argmax(1) == pairs[2]).float().mean()))
    infonce = AudioVisualEmbedding(create_encoder("small-cnn", channels=8),
                                   audio_encoder("vggish", width=0.125), embed_dim=8)  # fmt: skip
    with pytest.raises(Exception, match="objective='avc'"):
        infonce.correspond(img, aud)


def test_threshold_and_nearest_place_by_hand():
    scores = torch.tensor([0.1, 0.2, 0.35, 0.4, 0.9])
    labels = torch.tensor([0, 0, 1, 0, 1])
    assert best_threshold(scores, labels) == pytest.approx(0.275)  # 4 of 5 right
    assert best_threshold(torch.tensor([0.5, 0.6]), torch.tensor([1, 1])) < 0.5  # all ones
    # Tied scores fall on one side together: [.5, .5, .5] with labels 0, 1, 1 is best
    # called all ones (2 of 3), never split inside the tie.
    assert best_threshold(torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0, 1, 1])) < 0.5
    with pytest.raises(Exception, match="labels must be 0/1"):
        best_threshold(torch.tensor([0.5]), torch.tensor([2]))
    protos = torch.tensor([[1.0, 0.0], [float("nan"), float("nan")], [0.0, 1.0]])
    sounds = torch.tensor([[0.9, 0.1], [0.1, 0.9], [-1.0, -1.0]])
    assert nearest_place(sounds, protos).tolist() == [0, 2, 0]  # never the empty place 1


def test_the_avc_objective_trains_and_scores_with_its_fusion_head(tmp_path):
    d = train_tiny("scene-sound", tmp_path, "model.objective=avc", "eval.n_figures=0")
    test = read_metrics(d)["test"]
    assert test["correspondence_threshold"] == 0.5
    log = (d / "logs" / "csv" / "metrics.csv").read_text()
    assert "train/correspondence_acc" in log.splitlines()[0]


def test_an_av_manifest_folder_trains_and_predicts(tmp_path, capsys):
    from xmodal.world import World
    from xmodal.world.export import export

    root = export(World(seed=0), "av-manifest", tmp_path / "av",
                  sizes={"train": 16, "val": 8, "test": 8})  # fmt: skip
    d = train_tiny("scene-sound", tmp_path / "runs", "data.name=av-manifest",
                   f"data.root={root}", "eval.n_figures=0")  # fmt: skip
    test = read_metrics(d)["test"]
    assert test["n_clips"] == 8 and 0 <= test["place_acc"] <= 100
    task, _ = load_run(d)
    assert set(task.places()) <= set(World(seed=0).config.places)
    # A row whose file is missing is named with its line.
    (root / "audio" / "test" / "world_test_000003.wav").unlink()
    data = task.av_manifest_data("test")
    with pytest.raises(DataError, match=r"manifest.csv' line \d+: its audio .*000003.wav"):
        data[3]
    with pytest.raises(DataError, match="no row of split 'compositional'"):
        task.av_manifest_data("compositional")


def test_predict_names_a_place_and_the_nearest_frames(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    wav = world_wav(tmp_path / "a.wav", seconds=1.0)
    assert main(["predict", "scene-sound", "--run", str(run_dir), str(wav), "--out",
                 str(out)]) == 0  # fmt: skip
    (record,) = json.loads((out / "predictions.json").read_text())
    assert record["place"] in load_run(run_dir)[0].places()
    assert len(record["frames"]) == 5 and all(0 <= f["test_index"] < 8 for f in record["frames"])
    capsys.readouterr()
    short = world_wav(tmp_path / "short.wav", seconds=0.5)
    assert main(["predict", "scene-sound", "--run", str(run_dir), str(short), "--out",
                 str(out)]) == 1  # fmt: skip
    assert "short.wav" in one_line_error(capsys)


def test_av_manifest_without_root_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "scene-sound", "--runs-dir", str(tmp_path),
                 *tiny("scene-sound", "data.name=av-manifest")]) == 1  # fmt: skip
    assert "data.name=av-manifest needs data.root" in one_line_error(capsys)
