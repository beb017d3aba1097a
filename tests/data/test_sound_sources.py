"""Flickr-SoundNet and VGG-SS loaders: the box merge against hand-computed maps and against
a transcription of the public evaluation code (LVS / EZ-VSL / SLAVC), the world's exports
read back to the union of the sounding objects' boxes, the items' shapes and ranges, and
a DataError naming the file for each kind of bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from xmodal.data.sound_sources import (
    VGGSS,
    FlickrSoundNet,
    boxes_to_map,
    read_flickr_xml,
    read_vggss_json,
)
from xmodal.errors import DataError, ParameterError
from xmodal.world import World
from xmodal.world.export import export

SIZES = {"train": 2, "val": 2, "test": 3}
LOADERS = {"flickr-soundnet": FlickrSoundNet, "vggss": VGGSS}


# ------------------------------------------------------------------------------ the public code


def _public_flickr_map(path, size: int) -> np.ndarray:
    """load_all_bboxes + bbox2gtmap (format 'flickr') of the public code, 224 -> size."""
    gt = ET.parse(path).getroot()
    bboxes = []
    for child in gt:
        for childs in child:
            bbox = []
            if childs.tag == "bbox":
                for index, ch in enumerate(childs):
                    if index == 0:
                        continue
                    bbox.append(int(size * int(ch.text) / 256))
            bboxes.append(bbox)
    gt_map = np.zeros([size, size])
    for xmin, ymin, xmax, ymax in bboxes:
        temp = np.zeros([size, size])
        temp[ymin:ymax, xmin:xmax] = 1
        gt_map += temp
    gt_map = gt_map / 2
    gt_map[gt_map > 1] = 1
    return gt_map


def _public_vggss_map(json_path, file: str, size: int) -> np.ndarray:
    """load_all_bboxes + bbox2gtmap (format 'vggss') of the public code, 224 -> size."""
    with open(json_path) as f:
        annotations = json.load(f)
    gt_bboxes = {}
    for annotation in annotations:
        bboxes = [(np.clip(np.array(bbox), 0, 1) * size).astype(int) for bbox in annotation["bbox"]]
        gt_bboxes[annotation["file"]] = bboxes
    gt_map = np.zeros([size, size])
    for xmin, ymin, xmax, ymax in gt_bboxes[file]:
        temp = np.zeros([size, size])
        temp[ymin:ymax, xmin:xmax] = 1
        gt_map += temp
    gt_map[gt_map > 0] = 1
    return gt_map


# ------------------------------------------------------------------------------ merge


def test_consensus_of_two_disagreeing_annotators():
    got = boxes_to_map([(1, 1, 5, 4), (3, 2, 7, 6)], 8, "consensus")
    expected = torch.zeros(8, 8)
    expected[1:4, 1:5] += 0.5  # annotator 1 alone: 0.5
    expected[2:6, 3:7] += 0.5  # annotator 2 alone: 0.5; where both agree: 1
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert got[1, 1] == 0.5 and got[2, 3] == 1.0 and got[5, 6] == 0.5 and got[0, 0] == 0.0
    # Three annotators agreeing count 1.5, clipped to 1.
    three = boxes_to_map([(0, 0, 2, 2)] * 3, 4, "consensus")
    assert three.tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_union_is_one_where_any_box_is():
    got = boxes_to_map([(1, 1, 5, 4), (3, 2, 7, 6), (6, 6, 20, 20)], 8, "union")
    expected = torch.zeros(8, 8)
    expected[1:4, 1:5] = 1
    expected[2:6, 3:7] = 1
    expected[6:, 6:] = 1  # cut off at the border, as a numpy slice is
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert boxes_to_map([], 5, "union").equal(torch.zeros(5, 5))
    assert boxes_to_map([(2, 2, 2, 4)], 5, "union").equal(torch.zeros(5, 5))  # empty box


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([(0, 0, 1, 1)], 4, "mean"), r"rule must be one of 'consensus', 'union'. Found: 'mean'"),
        (([(3, 0, 1, 1)], 4, "union"), r"boxes\[0\] must have 0 <= xmin <= xmax"),
        (([(0, -1, 1, 1)], 4, "union"), r"boxes\[0\] must have 0 <= xmin"),
        (([(0, 0, 1)], 4, "union"), r"boxes\[0\] must be 4 integers"),
        (([(0, 0, 1.5, 2)], 4, "union"), r"boxes\[0\] must be 4 integers"),
        (([], 0, "union"), r"size must be an integer >= 1. Found: 0"),
    ],
)
def test_merge_refuses_bad_arguments(args, match):
    with pytest.raises(ParameterError, match=match):
        boxes_to_map(*args)


# ------------------------------------------------------------------------------ folders


def _folder(root, ids=("a", "b"), *, list_name="flickr_test.csv", frame_size=(40, 30)):
    """Frames and audio of ``ids`` and a list naming them, under ``root``."""
    for folder in ("frames", "audio", "metadata"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for k, uid in enumerate(ids):
        Image.new("RGB", frame_size, (200, 20 * k, 10)).save(root / "frames" / f"{uid}.jpg")
        sf.write(root / "audio" / f"{uid}.wav", np.full(4000, 0.25), 8000)  # 0.5 s at 8 kHz
    lines = "".join(f"{uid},0\n" if list_name.endswith(".csv") else f"{uid}\n" for uid in ids)
    (root / "metadata" / list_name).write_text(lines)
    return root


_XML = """<annotation>
  <filename>a.jpg</filename>
  <bboxes>
    <bbox><idx>1</idx><xmin>10</xmin><ymin>20</ymin><xmax>130</xmax><ymax>201</ymax></bbox>
    <bbox><idx>2</idx><xmin>61</xmin><ymin>5</ymin><xmax>250</xmax><ymax>151</ymax></bbox>
    <bbox><idx>1</idx><xmin>199</xmin><ymin>210</ymin><xmax>256</xmax><ymax>256</ymax></bbox>
  </bboxes>
</annotation>
"""


def _kw(size=224):
    return {"image_size": size, "sample_rate": 8000, "seconds": 0.5}


@pytest.mark.parametrize("size", [224, 100, 64])
def test_a_flickr_xml_reads_as_the_public_code_reads_it(tmp_path, size):
    root = _folder(tmp_path)
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.xml").write_text(_XML)
    assert read_flickr_xml(root / "Annotations" / "a.xml") == [
        (10, 20, 130, 201), (61, 5, 250, 151), (199, 210, 256, 256)
    ]  # fmt: skip
    items = FlickrSoundNet(root, "test", **_kw(size))
    got = items[0]["sounding_mask"]
    expected = _public_flickr_map(root / "Annotations" / "a.xml", size)
    np.testing.assert_array_equal(got.numpy(), expected)
    assert set(np.unique(expected)) == {0.0, 0.5, 1.0}  # one annotator, and two agreeing
    # "b" has no XML file: unlabelled, all zeros.
    assert items.labelled.tolist() == [True, False]
    assert items[1]["labelled"] is False and not items[1]["sounding_mask"].any()


@pytest.mark.parametrize("size", [224, 100])
def test_a_vggss_json_reads_as_the_public_code_reads_it(tmp_path, size):
    root = _folder(tmp_path, list_name="vggss_test.csv")
    entries = [
        {"file": "a", "class": "elk bugling", "bbox": [[0.403125, 0.253125, 0.6, 0.75]]},
        {"file": "b", "class": "playing cello",
         "bbox": [[-0.1, 0.021875, 0.6875, 1.2], [0.45, 0.190625, 0.584375, 0.478125]]},
    ]  # fmt: skip
    (root / "metadata" / "vggss.json").write_text(json.dumps(entries))
    boxes = read_vggss_json(root / "metadata" / "vggss.json")
    assert boxes["a"] == [(0.403125, 0.253125, 0.6, 0.75)] and len(boxes["b"]) == 2
    items = VGGSS(root, "test", **_kw(size))
    for i, uid in enumerate(("a", "b")):
        expected = _public_vggss_map(root / "metadata" / "vggss.json", uid, size)
        np.testing.assert_array_equal(items[i]["sounding_mask"].numpy(), expected)
        assert set(np.unique(expected)) == {0.0, 1.0}


def test_items_have_their_shapes_dtypes_and_ranges(tmp_path):
    root = _folder(tmp_path, list_name="flickr_train.txt")  # no Annotations/: train is unboxed
    items = FlickrSoundNet(root, "train", image_size=48, sample_rate=16000, seconds=1.0)
    assert len(items) == 2 and items.ids == ["a", "b"]
    item = items[1]
    assert set(item) == {"image", "audio", "sounding_mask", "labelled", "id", "index"}
    assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    # The frame is a flat (200, 20, 10) colour, resized from 40 x 30.
    torch.testing.assert_close(item["image"].mean((1, 2)), torch.tensor([200, 20, 10]) / 255,
                               atol=0.02, rtol=0)  # fmt: skip
    # 0.5 s of 0.25 at 8 kHz, read at 16 kHz and padded with silence to 1 s.
    assert item["audio"].shape == (16000,) and item["audio"].dtype == torch.float32
    assert float(item["audio"][1000:7000].sub(0.25).abs().max()) < 1e-3
    assert float(item["audio"][8100:].abs().max()) == 0.0
    assert item["sounding_mask"].shape == (48, 48) and item["sounding_mask"].dtype == torch.float32
    assert item["labelled"] is False and item["id"] == "b" and item["index"] == 1
    batch = torch.utils.data.default_collate([items[0], items[1]])
    assert batch["image"].shape == (2, 3, 48, 48) and batch["labelled"].dtype == torch.bool


# ------------------------------------------------------------------------------ the world


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Both formats of two worlds: 64 px (Flickr's grid is 4x) and 100 px (neither 256 / 100
    nor 29 / 100 * 100 is exact)."""
    root = tmp_path_factory.mktemp("sources")
    out = {}
    for side in (64, 100):
        world = World(seed=0, image_size=side)
        for fmt in LOADERS:
            out[fmt, side] = (world, export(world, fmt, root / f"{fmt}-{side}", sizes=SIZES))
    return out


@pytest.mark.parametrize("fmt", list(LOADERS))
@pytest.mark.parametrize("side", [64, 100])
def test_the_world_reads_back_as_the_union_of_its_sounding_boxes(exported, fmt, side):
    world, root = exported[fmt, side]
    for split, n in SIZES.items():
        items = LOADERS[fmt](root, split, image_size=side, sample_rate=16000, seconds=1.0)
        assert items.ids == [f"world_{split}_{i:06d}" for i in range(n)]
        for i in range(n):
            scene = world.scene(split, i, questions=False)
            item = items[i]
            expected = torch.zeros(side, side)
            if split != "train":  # train lists carry no boxes, as the real sets'
                for k in scene.sounding:
                    x0, y0, x1, y1 = scene.objects[k].bbox
                    expected[y0:y1, x0:x1] = 1
            assert item["labelled"] is (split != "train")
            assert torch.equal(item["sounding_mask"], expected)
            # The JPEG frame is the world's image, up to compression.
            error = (item["image"] - scene.image.float() / 255).abs()
            assert float(error.mean()) < 0.01 and float(error.max()) < 0.12
            # 16-bit PCM: within one quantization step of the world's mixture.
            assert float((item["audio"] - scene.audio).abs().max()) <= 1 / 32768


@pytest.mark.parametrize("fmt", list(LOADERS))
def test_the_export_at_224_is_what_the_public_code_reads(exported, fmt):
    world, root = exported[fmt, 64]
    items = LOADERS[fmt](root, "test", image_size=224, sample_rate=16000, seconds=1.0)
    for i, uid in enumerate(items.ids):
        if fmt == "flickr-soundnet":
            expected = _public_flickr_map(root / "Annotations" / f"{uid}.xml", 224)
        else:
            expected = _public_vggss_map(root / "metadata" / "vggss.json", uid, 224)
        np.testing.assert_array_equal(items[i]["sounding_mask"].numpy(), expected)
        assert expected.any()


# ------------------------------------------------------------------------------ bad input


def _flickr(root, split="test"):
    return FlickrSoundNet(root, split, **_kw())


def _vggss(root, split="test"):
    return VGGSS(root, split, **_kw())


def _with_xml(root, text):
    (root / "Annotations").mkdir(exist_ok=True)
    (root / "Annotations" / "a.xml").write_text(text)
    return root


def _with_json(root, text):
    (root / "metadata" / "vggss.json").write_text(text)
    return root


def _bbox(values: str) -> str:
    return f"<annotation><bboxes><bbox><idx>1</idx>{values}</bbox></bboxes></annotation>"


def test_a_missing_folder_or_list_names_it(tmp_path):
    with pytest.raises(DataError, match=r"'.*nowhere' does not exist: not a Flickr-SoundNet"):
        _flickr(tmp_path / "nowhere")
    root = _folder(tmp_path / "f")
    with pytest.raises(DataError, match=r"flickr_val\.csv' does not exist"):
        _flickr(root, "val")
    with pytest.raises(DataError, match=r"'.*Annotations' does not exist: the test split"):
        _flickr(root)
    (root / "metadata" / "flickr_val.csv").write_text("\n\n")
    with pytest.raises(DataError, match=r"flickr_val\.csv' lists no id"):
        _flickr(root, "val")
    root = _folder(tmp_path / "v", list_name="vggss_test.csv")
    with pytest.raises(DataError, match=r"VGG-SS annotation file .*vggss\.json does not exist"):
        _vggss(root)
    with pytest.raises(DataError, match=r"vggss_train\.txt' does not exist"):
        _vggss(root, "train")


@pytest.mark.parametrize(("folder", "ext"), [("frames", "jpg"), ("audio", "wav")])
def test_a_listed_id_without_its_frame_or_audio_names_the_line(tmp_path, folder, ext):
    root = _folder(tmp_path, list_name="flickr_train.txt")
    (root / folder / f"b.{ext}").unlink()
    what = folder[:-1]
    with pytest.raises(DataError, match=rf"flickr_train\.txt' line 2: the {what} "
                                        rf"'.*b\.{ext}' of id 'b' does not exist"):  # fmt: skip
        _flickr(root, "train")


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("<annotation><bboxes>", r"a\.xml' is not an XML file"),
        (_bbox("<xmin>1</xmin><ymin>2</ymin><xmax>3</xmax>"), r"<bbox> 0: must hold .* 3 values"),
        (_bbox("<a>1</a><b>2</b><c>x</c><d>4</d>"), r"<bbox> 0: .* integers. Found: \['1', '2',"),
        (_bbox("<a>90</a><b>2</b><c>30</c><d>4</d>"), r"<bbox> 0: must have 0 <= xmin <= xmax .*"
                                                      r"Found: \[90, 2, 30, 4\]"),
        (_bbox("<a>1</a><b>-2</b><c>3</c><d>4</d>"), r"<bbox> 0: must have 0 <= xmin"),
    ],
)  # fmt: skip
def test_a_bad_flickr_annotation_names_the_file_and_box(tmp_path, xml, match):
    root = _with_xml(_folder(tmp_path), xml)
    with pytest.raises(DataError, match=match):
        _flickr(root)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[{", r"vggss\.json is not a JSON file"),
        ('{"file": "a"}', r"vggss\.json: must be a list of entries. Found: dict"),
        ('[{"file": "a"}]', r"vggss\.json: \[0\] has no field 'bbox'"),
        ('[{"file": 3, "bbox": []}]', r"vggss\.json: \[0\]\.file must be a str"),
        ('[{"file": "a", "bbox": [[0, 0, 1]]}]', r"\[0\]\.bbox\[0\] must be 4 finite numbers"),
        ('[{"file": "a", "bbox": [[0, 0, 1, NaN]]}]', r"\[0\]\.bbox\[0\] must be 4 finite"),
        ('[{"file": "a", "bbox": [[0.1, 0.2, 0.5, 0.6]]}, {"file": "b", "bbox": '
         '[[0.7, 0.2, 0.5, 0.6]]}]', r"\[1\]\.bbox\[0\] must have xmin <= xmax and ymin <= "
                                     r"ymax. Found: \[0.7, 0.2, 0.5, 0.6\]"),
    ],
)  # fmt: skip
def test_a_bad_vggss_annotation_names_the_file_and_entry(tmp_path, text, match):
    root = _with_json(_folder(tmp_path, list_name="vggss_test.csv"), text)
    with pytest.raises(DataError, match=match):
        _vggss(root)


def test_bad_parameters_name_the_value(tmp_path):
    root = _folder(tmp_path)
    with pytest.raises(ParameterError, match="image_size must be an integer >= 1. Found: 0"):
        FlickrSoundNet(root, "test", image_size=0, sample_rate=8000, seconds=1.0)
    with pytest.raises(ParameterError, match="seconds must be a finite number > 0. Found: -1"):
        VGGSS(root, "test", image_size=8, sample_rate=8000, seconds=-1)
    with pytest.raises(ParameterError, match="split must be a non-empty string. Found: 3"):
        VGGSS(root, 3, image_size=8, sample_rate=8000, seconds=1.0)
