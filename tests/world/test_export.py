"""World exporters: the files read back, with the loaders' own tools, to the world's samples."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xmodal.audio import load
from xmodal.errors import ParameterError
from xmodal.world import World
from xmodal.world import export as export_module
from xmodal.world.export import (
    FORMATS,
    answer_type,
    export,
    image_id,
    ljspeech_id,
    normalize_transcription,
    question_id,
    question_type,
)

SIZES = {"train": 6, "val": 3, "test": 3}


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="module")
def speech_cache(tmp_path_factory) -> Path:
    # Never the user's cache; shared by this module's tests so each caption is spoken once.
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="module")
def exported(world, tmp_path_factory, speech_cache) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    return {
        fmt: export(world, fmt, root / fmt, sizes=SIZES, cache_dir=speech_cache) for fmt in FORMATS
    }


def _read_json(path: Path):
    return json.loads(path.read_text())


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _samples():
    return [(split, i) for split, n in SIZES.items() for i in range(n)]


# ------------------------------------------------------------------------------ coco


def test_karpathy_json_schema_counts_and_captions(world, exported):
    data = _read_json(exported["coco"] / "dataset_coco.json")
    assert data["dataset"] == "coco"
    images = data["images"]
    assert [(im["split"], int(im["filename"][-10:-4])) for im in images] == _samples()
    sentids = []
    for position, im in enumerate(images):
        assert set(im) == {"filename", "filepath", "split", "sentids", "imgid", "sentences",
                           "cocoid"}  # fmt: skip
        index = int(im["filename"][-10:-4])
        scene = world.scene(im["split"], index, audio=False, questions=False)
        assert im["imgid"] == position
        assert im["cocoid"] == image_id(im["split"], index)
        assert [s["raw"] for s in im["sentences"]] == scene.captions
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        for s in im["sentences"]:
            assert set(s) == {"raw", "tokens", "imgid", "sentid"}
            assert s["imgid"] == position
            # Tokens are the caption's words, lower-cased, punctuation dropped.
            assert s["tokens"] == re.sub(r"[^a-z0-9 ]", " ", s["raw"].lower()).split()
        sentids += im["sentids"]
    assert len(sentids) == len(set(sentids)) == len(images) * world.config.n_captions
    assert len({im["cocoid"] for im in images}) == len(images)


def test_coco_images_decode_to_the_world_image(world, exported):
    root = exported["coco"]
    for im in _read_json(root / "dataset_coco.json")["images"]:
        index = int(im["filename"][-10:-4])
        expected = world.scene(im["split"], index, audio=False, questions=False).image
        got = _png(root / im["filepath"] / im["filename"])
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected.permute(1, 2, 0).numpy())


def test_coco_captions_annotations_match_karpathy(exported):
    root = exported["coco"]
    karpathy = _read_json(root / "dataset_coco.json")["images"]
    sentences = {s["sentid"]: (im["cocoid"], s["raw"]) for im in karpathy for s in im["sentences"]}
    all_image_ids, all_ann_ids = [], []
    for split in SIZES:
        data = _read_json(root / "annotations" / f"captions_{split}.json")
        assert data["type"] == "captions"
        ours = [im for im in karpathy if im["split"] == split]
        assert [im["id"] for im in data["images"]] == [im["cocoid"] for im in ours]
        assert [im["file_name"] for im in data["images"]] == [im["filename"] for im in ours]
        assert all((im["height"], im["width"]) == (64, 64) for im in data["images"])
        assert len(data["annotations"]) == sum(len(im["sentences"]) for im in ours)
        for ann in data["annotations"]:
            assert sentences[ann["id"]] == (ann["image_id"], ann["caption"])
        all_image_ids += [im["id"] for im in data["images"]]
        all_ann_ids += [ann["id"] for ann in data["annotations"]]
    assert len(all_image_ids) == len(set(all_image_ids))
    assert len(all_ann_ids) == len(set(all_ann_ids))


# ------------------------------------------------------------------------------ vqa


def test_vqa_questions_and_annotations_agree_with_the_world(world, exported):
    root = exported["vqa"]
    seen = set()
    for split, n in SIZES.items():
        qs = _read_json(root / f"v2_OpenEnded_mscoco_{split}_questions.json")
        anns = _read_json(root / f"v2_mscoco_{split}_annotations.json")
        assert qs["task_type"] == "Open-Ended" and qs["data_subtype"] == split
        assert [q["question_id"] for q in qs["questions"]] == [
            a["question_id"] for a in anns["annotations"]
        ]
        expected = []
        for i in range(n):
            scene = world.scene(split, i, audio=False)
            expected += [(image_id(split, i), question_id(split, i, k), q)
                         for k, q in enumerate(scene.questions)]  # fmt: skip
        assert len(qs["questions"]) == len(expected) == n * world.config.n_questions
        for q, a, (iid, qid, truth) in zip(qs["questions"], anns["annotations"], expected,
                                           strict=True):  # fmt: skip
            assert (q["image_id"], q["question_id"], q["question"]) == (iid, qid, truth.question)
            assert (a["image_id"], a["multiple_choice_answer"]) == (iid, truth.answer)
            assert len(a["answers"]) == 10
            assert [x["answer"] for x in a["answers"]] == [truth.answer] * 10
            assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
            # The answer type follows from the answer: counts are numbers, exist answers
            # are yes/no, colour and shape answers are neither.
            kind = {"count": "number", "exist": "yes/no", "colour": "other", "shape": "other"}
            assert a["answer_type"] == kind.get(
                truth.family, "yes/no" if truth.answer in ("yes", "no") else "other"
            )
            assert a["question_type"] == question_type(truth.question)
        seen.update(q["question_id"] for q in qs["questions"])
    assert len(seen) == sum(SIZES.values()) * world.config.n_questions


def test_vqa_images_are_the_coco_images(exported):
    coco, vqa = _files(exported["coco"] / "images"), _files(exported["vqa"] / "images")
    assert coco == vqa and len(vqa) == sum(SIZES.values())


def test_answer_and_question_types():
    assert [answer_type(a) for a in ("yes", "no", "two", "zero", "3", "red", "circle")] == [
        "yes/no", "yes/no", "number", "number", "number", "other", "other"
    ]  # fmt: skip
    assert question_type("how many red things are there?") == "how many"
    assert question_type("is there a blue square?") == "is there a"
    assert question_type("is the circle above the cross?") == "is the"
    assert question_type("what is the shape of the red thing?") == "what is the"
    assert question_type("what shape is the red thing?") == "what"
    assert question_type("which colour is the square?") == "which"
    assert question_type("is a circle there?") == "is"
    assert question_type("can you see a circle?") == "can you"
    assert question_type("whatever is this?") == "none of the above"
    assert question_type("where is the circle?") == "none of the above"


# ------------------------------------------------------------------------------ av-manifest


def test_av_manifest_points_to_the_world_frames_audio_and_masks(world, exported):
    root = exported["av-manifest"]
    with (root / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    sidecar = _read_json(root / "localization.json")["clips"]
    assert [(r["split"], int(r["video_id"][-6:])) for r in rows] == _samples()
    assert set(sidecar) == {r["video_id"] for r in rows}
    sr = world.config.sample_rate
    for row in rows:
        scene = world.scene(row["split"], int(row["video_id"][-6:]), questions=False)
        clip = sidecar[row["video_id"]]
        assert row["label"] == clip["label"] == scene.place
        assert float(row["start_seconds"]) == 0.0
        assert float(row["duration"]) == pytest.approx(world.config.clip_seconds)
        assert row["annotation"] == f"localization.json#{row['video_id']}"
        np.testing.assert_array_equal(_png(root / row["frame"]),
                                      scene.image.permute(1, 2, 0).numpy())  # fmt: skip
        y, file_sr = load(root / row["audio"])
        assert file_sr == sr and y.shape == scene.audio.shape
        # 16-bit PCM: within one quantization step of the world's float mixture.
        assert float((y - scene.audio).abs().max()) <= 1 / 32768
        assert clip["sounding"] == scene.sounding
        np.testing.assert_array_equal(_png(root / clip["sounding_mask"]) > 127,
                                      scene.sounding_mask.numpy())  # fmt: skip
        assert len(clip["objects"]) == len(scene.objects)
        for obj, truth, mask in zip(clip["objects"], scene.objects, scene.masks, strict=True):
            assert (obj["shape"], obj["colour"], obj["size"], obj["sounding"]) == (
                truth.shape, truth.colour, truth.size, truth.sounding
            )  # fmt: skip
            assert tuple(obj["bbox"]) == truth.bbox
            np.testing.assert_array_equal(_png(root / obj["mask"]) > 127, mask.numpy())


# ---------------------------------------------------------------------- flickr-soundnet, vggss


def _sound_source_files(root: Path, prefix: str) -> set[str]:
    ids = {split: [f"world_{split}_{i:06d}" for i in range(n)] for split, n in SIZES.items()}
    files = {f"metadata/{prefix}_train.txt", f"metadata/{prefix}_val.csv",
             f"metadata/{prefix}_test.csv"}  # fmt: skip
    for uid in (uid for split in ids.values() for uid in split):
        files |= {f"frames/{uid}.jpg", f"audio/{uid}.wav"}
    assert (root / f"metadata/{prefix}_train.txt").read_text() == "".join(
        f"{uid}\n" for uid in ids["train"]
    )
    for split in ("val", "test"):
        with (root / f"metadata/{prefix}_{split}.csv").open(newline="") as f:
            assert [row[0] for row in csv.reader(f)] == ids[split]
    return files


def _check_frame_and_audio(root: Path, uid: str, scene) -> None:
    with Image.open(root / "frames" / f"{uid}.jpg") as im:
        assert im.format == "JPEG" and not im.info.get("exif")
        frame = np.asarray(im).astype(np.float64)
    error = np.abs(frame - scene.image.permute(1, 2, 0).numpy())
    assert error.mean() < 0.01 * 255 and error.max() < 0.12 * 255  # quality 95, 4:4:4
    y, sr = load(root / "audio" / f"{uid}.wav")
    assert sr == 16000 and float((y - scene.audio).abs().max()) <= 1 / 32768


def test_flickr_soundnet_has_the_frames_audio_lists_and_boxes_of_three_annotators(world, exported):
    root = exported["flickr-soundnet"]
    files = _sound_source_files(root, "flickr")
    for split, index in _samples():
        uid = f"world_{split}_{index:06d}"
        scene = world.scene(split, index, questions=False)
        _check_frame_and_audio(root, uid, scene)
        if split == "train":
            continue  # as Flickr's training lists: no boxes
        files.add(f"Annotations/{uid}.xml")
        annotation = ET.parse(root / "Annotations" / f"{uid}.xml").getroot()
        # What the public reader walks: a root child's children are all <bbox>, each a
        # first element it skips and xmin, ymin, xmax, ymax on the 256 grid (64 px x 4).
        assert annotation.find("filename").text == f"{uid}.jpg"
        grandchildren = [e for child in annotation for e in child]
        assert {e.tag for e in grandchildren} == {"bbox"}
        got = [(b[0].tag, b[0].text, [int(e.text) for e in b[1:]]) for b in grandchildren]
        assert [[e.tag for e in b[1:]] for b in grandchildren] == [
            ["xmin", "ymin", "xmax", "ymax"]
        ] * len(grandchildren)
        assert got == [("annotator", str(k), [4 * x for x in scene.objects[i].bbox])
                       for i in scene.sounding for k in (1, 2, 3)]  # fmt: skip
    assert set(_files(root)) == files


def test_vggss_has_the_frames_audio_lists_and_normalised_boxes(world, exported):
    root = exported["vggss"]
    files = _sound_source_files(root, "vggss") | {"metadata/vggss.json"}
    entries = []
    for split, index in _samples():
        uid = f"world_{split}_{index:06d}"
        scene = world.scene(split, index, questions=False)
        _check_frame_and_audio(root, uid, scene)
        if split != "train":
            boxes = [[x / 64 for x in scene.objects[i].bbox] for i in scene.sounding]
            entries.append({"bbox": boxes, "class": scene.place, "file": uid})
    assert _read_json(root / "metadata" / "vggss.json") == entries
    assert set(_files(root)) == files


@pytest.mark.parametrize("side", [32, 64, 100, 112, 200, 224, 256])
def test_sound_source_boxes_scale_back_to_the_world_pixels(side):
    # The readers' scalings, int(S * v / 256) and int(clip(v, 0, 1) * S), at the world's
    # size give back every pixel; 29 / 100 * 100 alone would give 28.
    for x in range(side + 1):
        v = export_module._flickr_grid(x, side)
        assert 0 <= v <= 256 and int(side * v / 256) == x
        u = export_module._vggss_unit(x, side)
        assert int(np.clip(np.array(u), 0, 1) * side) == x
        assert abs(u - x / side) <= 2e-16


# ------------------------------------------------------------------------------ ljspeech


def _metadata(root: Path) -> list[list[str]]:
    text = (root / "metadata.csv").read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text
    return [line.split("|") for line in text.splitlines()]


def test_ljspeech_metadata_rows_are_the_captions(world, exported):
    rows = _metadata(exported["ljspeech"])
    assert [row[0] for row in rows] == [ljspeech_id(s, i) for s, i in _samples()]
    assert rows[0][0] == "WORLD-train-000000"
    for row, (split, index) in zip(rows, _samples(), strict=True):
        caption = world.scene(split, index, audio=False, questions=False).captions[0]
        # Three columns, no header; the captions spell their numbers, so the
        # normalized column is the caption itself.
        assert row == [ljspeech_id(split, index), caption, caption]


def test_ljspeech_wavs_are_the_spoken_captions(world, exported, speech_cache):
    root = exported["ljspeech"]
    wavs = sorted(p.name for p in (root / "wavs").iterdir())
    assert wavs == sorted(f"{ljspeech_id(s, i)}.wav" for s, i in _samples())
    for split, index in _samples():
        spoken = world.spoken_caption(split, index, cache_dir=speech_cache)
        y, sr = load(root / "wavs" / f"{ljspeech_id(split, index)}.wav")
        assert sr == world.config.sample_rate == 16000
        assert y.shape == spoken.audio.shape and float(spoken.audio.abs().max()) > 0.1
        # 16-bit PCM: within one quantization step of the narrator's float speech.
        assert float((y - spoken.audio).abs().max()) <= 1 / 32768
    readme = (root / "README.txt").read_text()
    assert "16000 Hz" in readme and "22050 Hz" in readme
    assert f"Clips: {len(wavs)}" in readme


def test_normalize_transcription_spells_numbers():
    assert normalize_transcription("boil for 10 minutes") == "boil for ten minutes"
    assert normalize_transcription("add 2 eggs and 250 g flour") == (
        "add two eggs and two hundred fifty g flour"
    )
    assert normalize_transcription("bake 45 minutes, 0 salt, 300 ml") == (
        "bake forty-five minutes, zero salt, three hundred ml"
    )
    assert normalize_transcription("we see one red circle") == "we see one red circle"


# ------------------------------------------------------------------------------ recipe1m


def test_recipe1m_layers_hold_the_world_recipes(world, exported):
    root = exported["recipe1m"]
    layer1 = _read_json(root / "layer1.json")
    layer2 = _read_json(root / "layer2.json")
    classes = _read_json(root / "classes.json")
    ids = [f"world_{s}_{i:06d}" for s, i in _samples()]
    assert [r["id"] for r in layer1] == [r["id"] for r in layer2] == ids
    assert sorted(classes) == sorted(ids)
    for entry, images, (split, index) in zip(layer1, layer2, _samples(), strict=True):
        assert set(entry) == {"id", "title", "ingredients", "instructions", "partition", "url"}
        recipe = world.recipe(split, index)
        assert entry["title"] == recipe.title
        assert entry["ingredients"] == [{"text": t} for t in recipe.ingredients]
        assert entry["instructions"] == [{"text": t} for t in recipe.instructions]
        assert (entry["partition"], entry["url"]) == (split, "")
        assert classes[entry["id"]] == recipe.dish
        assert images == {"id": entry["id"], "images": [{"id": f"{entry['id']}.png", "url": ""}]}


def test_recipe1m_images_decode_to_the_world_dish(world, exported):
    root = exported["recipe1m"]
    assert len(list((root / "images").rglob("*.png"))) == sum(SIZES.values())
    for split, index in _samples():
        got = _png(root / "images" / split / f"world_{split}_{index:06d}.png")
        expected = world.recipe(split, index).image
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected.permute(1, 2, 0).numpy())


def test_recipe1m_refuses_the_compositional_split(tmp_path):
    world = World(seed=0, compositional=True)
    with pytest.raises(ParameterError, match="recipe1m.*'compositional'"):
        export(world, "recipe1m", tmp_path / "out", splits=("compositional",), sizes=1)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ invariants


@pytest.mark.parametrize("fmt", FORMATS)
def test_exporting_twice_gives_identical_bytes(world, tmp_path, speech_cache, fmt):
    sizes = {"train": 2, "test": 1}
    kw = {"splits": ("train", "test"), "sizes": sizes, "cache_dir": speech_cache}
    a = export(world, fmt, tmp_path / "a", **kw)
    b = export(world, fmt, tmp_path / "b", **kw)
    files = _files(a)
    assert files and files == _files(b)
    # And no temporary folders left beside the exports.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_an_other_seed_gives_other_data(tmp_path):
    a = export(World(seed=0), "coco", tmp_path / "a", splits=("val",), sizes=2)
    b = export(World(seed=1), "coco", tmp_path / "b", splits=("val",), sizes=2)
    assert (a / "dataset_coco.json").read_bytes() != (b / "dataset_coco.json").read_bytes()


def test_compositional_split_exports(tmp_path):
    world = World(seed=0, compositional=True)
    out = export(world, "coco", tmp_path / "c", splits=("compositional",), sizes=2)
    images = _read_json(out / "dataset_coco.json")["images"]
    assert [im["split"] for im in images] == ["compositional"] * 2
    assert images[0]["cocoid"] == 40_000_000


def test_interrupted_export_leaves_nothing(world, tmp_path, monkeypatch):
    calls = []

    def failing(path, data):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    monkeypatch.setattr(export_module, "_write_bytes", failing)
    with pytest.raises(KeyboardInterrupt):
        export(world, "coco", tmp_path / "out", sizes=2)
    assert len(calls) == 5
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_export(world, tmp_path, monkeypatch):
    out = export(world, "vqa", tmp_path / "out", splits=("val",), sizes=1)
    before = _files(out)

    def failing(path, data):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "_write_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        export(world, "coco", out, sizes=2, overwrite=True)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_overwrite_replaces_a_non_empty_folder(world, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(ParameterError, match="not empty.*overwrite=True"):
        export(world, "coco", out, splits=("val",), sizes=1)
    assert (out / "stale.txt").read_text() == "old"
    export(world, "coco", out, splits=("val",), sizes=1, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert (out / "dataset_coco.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    # An empty existing folder needs no overwrite.
    (tmp_path / "empty").mkdir()
    export(world, "vqa", tmp_path / "empty", splits=("val",), sizes=1)
    assert (tmp_path / "empty" / "v2_mscoco_val_annotations.json").is_file()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fmt": "librispeech"}, r"'librispeech'.*coco, vqa, av-manifest, ljspeech, recipe1m"),
        ({"cache_dir": 3}, r"cache_dir must be None, a str or os.PathLike. Found: 3"),
        ({"fmt": "COCO"}, r"'COCO'"),
        ({"sizes": 0}, r"sizes must be an integer >= 1. Found: 0"),
        ({"sizes": 2.5}, r"sizes must be an integer >= 1. Found: 2.5"),
        ({"sizes": {"train": 2}}, r"missing \['val', 'test'\]"),
        ({"sizes": {"train": 1, "val": 1, "test": 1, "extra": 1}}, r"unexpected \['extra'\]"),
        ({"sizes": {"train": 1, "val": -1, "test": 1}}, r"sizes\['val'\].*Found: -1"),
        ({"sizes": 10**7 + 1}, r"at most 10000000"),
        ({"splits": ("train", "dev")}, r"'dev'"),
        ({"splits": ()}, r"at least one split"),
        ({"splits": "train"}, r"sequence of split names. Found: 'train'"),
        ({"splits": ("val", "val")}, r"repeat"),
        ({"splits": ("compositional",)}, r"compositional=True"),
        ({"overwrite": "yes"}, r"overwrite must be True or False"),
    ],
)
def test_bad_arguments_name_the_value(world, tmp_path, kwargs, match):
    args = {"fmt": "coco", "sizes": 1, **kwargs}
    with pytest.raises(ParameterError, match=match):
        export(world, args.pop("fmt"), tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_bad_world_and_out_dir(world, tmp_path):
    with pytest.raises(ParameterError, match="must be an xmodal.world.World. Found: str"):
        export("world", "coco", tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="is not a folder"):
        export(world, "coco", tmp_path / "file", sizes=1)
    with pytest.raises(ParameterError, match="out_dir must be a str or os.PathLike. Found: 3"):
        export(world, "coco", 3, sizes=1)


def test_vqa_refuses_more_questions_than_the_id_space(tmp_path):
    with pytest.raises(ParameterError, match="n_questions must be at most 1000. Found: 1001"):
        export(World(seed=0, n_questions=1001), "vqa", tmp_path / "out", sizes=1)
    assert not (tmp_path / "out").exists()
