"""KarpathyCaptions on the world's own COCO export: the images it loads are the world's,
the captions are its tokens, and every kind of broken file gets a DataError naming where."""

from __future__ import annotations

import json
import re

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from xmodal.data import KarpathyCaptions
from xmodal.errors import DataError, ParameterError
from xmodal.world import World
from xmodal.world.export import export

SIZES = {"train": 8, "val": 4, "test": 4}


@pytest.fixture(scope="module")
def world():
    return World(seed=0)


@pytest.fixture(scope="module")
def coco(world, tmp_path_factory):
    return export(world, "coco", tmp_path_factory.mktemp("export") / "coco", sizes=SIZES)


def _tokens(caption: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", caption.lower()))


def _write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_items_are_the_world_scenes(world, coco, split):
    ds = KarpathyCaptions(coco / "dataset_coco.json", coco, split)
    assert len(ds) == SIZES[split]
    for i in range(len(ds)):
        item = ds[i]
        scene = world.scene(split, i, audio=False, questions=False)
        assert item["image"].dtype == torch.float32
        assert torch.equal(item["image"], scene.image.float() / 255)
        assert item["captions"] == [_tokens(c) for c in scene.captions]
        assert item["index"] == i and item["filename"] == f"world_{split}_{i:06d}.png"
    assert ds.captions == [ds[i]["captions"] for i in range(len(ds))]
    assert ds[-1]["index"] == len(ds) - 1 and ds[-len(ds)]["index"] == 0
    with pytest.raises(IndexError, match=rf"KarpathyCaptions index out of range: {len(ds)} "):
        ds[len(ds)]
    with pytest.raises(IndexError, match=r"out of range: -\d+ \(size"):
        ds[-len(ds) - 1]
    with pytest.raises(TypeError):
        ds[1.0]


def test_batches_through_a_dataloader_at_a_chosen_size(coco):
    ds = KarpathyCaptions(coco / "dataset_coco.json", coco, "train", image_size=32)
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn)))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert batch["index"].tolist() == [0, 1, 2, 3]
    assert len(batch["captions"]) == 4 and batch["captions"][0] == ds.captions[0]


def test_restval_joins_train_unless_asked_not_to(coco, tmp_path):
    data = json.loads((coco / "dataset_coco.json").read_text())
    for entry in data["images"]:
        if entry["filename"].startswith("world_val_") and entry["imgid"] % 2:
            entry["split"] = "restval"
    path = _write(tmp_path / "restval.json", data)
    with_restval = KarpathyCaptions(path, coco, "train")
    without = KarpathyCaptions(path, coco, "train", restval_as_train=False)
    restval = KarpathyCaptions(path, coco, "restval")
    assert len(restval) == 2 and len(without) == 8 and len(with_restval) == 10
    assert set(with_restval.filenames) == set(without.filenames) | set(restval.filenames)
    assert len(KarpathyCaptions(path, coco, "val")) == 2


def test_flickr_entries_without_filepath_read_from_the_root(coco, tmp_path):
    (tmp_path / "Flicker8k_Dataset").mkdir()
    Image.new("RGB", (10, 6), (255, 0, 0)).save(tmp_path / "Flicker8k_Dataset" / "1000.jpg")
    sentence = {"tokens": ["a", "dog"], "raw": "A dog."}
    entry = {"filename": "1000.jpg", "split": "test", "sentences": [sentence], "imgid": 0}
    path = _write(tmp_path / "dataset_flickr8k.json", {"images": [entry], "dataset": "flickr8k"})
    ds = KarpathyCaptions(path, tmp_path / "Flicker8k_Dataset", "test", image_size=(4, 8))
    item = ds[0]
    assert item["captions"] == ["a dog"]
    assert item["image"].shape == (3, 4, 8)
    assert torch.allclose(item["image"][0], torch.ones(4, 8), atol=0.01)


def _broken(coco, tmp_path, edit):
    data = json.loads((coco / "dataset_coco.json").read_text())
    edit(data)
    return _write(tmp_path / "broken.json", data)


def test_broken_files_name_the_entry_and_field(coco, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        KarpathyCaptions(tmp_path / "nope.json", coco, "val")
    (tmp_path / "text.json").write_text("not json {")
    with pytest.raises(DataError, match="is not a JSON file"):
        KarpathyCaptions(tmp_path / "text.json", coco, "val")
    with pytest.raises(DataError, match='needs a top-level "images" list'):
        KarpathyCaptions(_write(tmp_path / "x.json", {"annotations": []}), coco, "val")
    cases = [
        (lambda d: d["images"][3].pop("filename"), r"images\[3\] has no field 'filename'"),
        (lambda d: d["images"][5].pop("split"), r"images\[5\] has no field 'split'"),
        (lambda d: d["images"][2].update(sentences=[]), r"images\[2\] has no sentences"),
        (
            lambda d: d["images"][1]["sentences"][2].pop("tokens"),
            r"images\[1\]\.sentences\[2\] has no field 'tokens'",
        ),
        (lambda d: d["images"][0].update(split="dev"), r"images\[0\]\.split is 'dev'"),
        (
            lambda d: d["images"].insert(2, "x.png"),
            r"images\[2\] must be an object. Found: 'x.png'",
        ),
        (
            lambda d: d["images"][1]["sentences"].append(["a", "dog"]),
            r"images\[1\]\.sentences\[\d\] must be an object. Found: \['a', 'dog'\]",
        ),
        (
            lambda d: d["images"][4].update(filename=7),
            r"images\[4\]\.filename must be a str. Found: int",
        ),
    ]
    for edit, message in cases:
        with pytest.raises(DataError, match=message):
            KarpathyCaptions(_broken(coco, tmp_path, edit), coco, "val")


def test_bad_arguments_and_unreadable_images(coco, tmp_path):
    with pytest.raises(ParameterError, match="unknown split 'dev'"):
        KarpathyCaptions(coco / "dataset_coco.json", coco, "dev")
    with pytest.raises(DataError, match="is not a folder"):
        KarpathyCaptions(coco / "dataset_coco.json", tmp_path / "none", "val")
    with pytest.raises(ParameterError, match="image_size must be an integer"):
        KarpathyCaptions(coco / "dataset_coco.json", coco, "val", image_size=-1)
    ds = KarpathyCaptions(coco / "dataset_coco.json", tmp_path, "val")  # images not here
    assert len(ds.captions) == 4  # captions need no image
    with pytest.raises(DataError, match=r"world_val_000000\.png does not exist"):
        ds[0]
    items = [
        {"image": torch.zeros(3, h, 4), "captions": [], "index": i, "filename": "a"}
        for i, h in enumerate((4, 5))
    ]
    with pytest.raises(ParameterError, match="give KarpathyCaptions an image_size"):
        ds.collate_fn(items)
