"""Write the world in the formats of real datasets, so real-format loaders read world data.

Formats (``export(world, fmt, out_dir)``):

``"coco"``
    Karpathy-split captions as used by Show and Tell / Show, Attend and Tell and every
    retrieval paper, plus the COCO captions annotation files pycocoevalcap reads::

        dataset_coco.json                      {"images": [...], "dataset": "coco"}
        annotations/captions_{split}.json      {"images", "annotations", "info", ...}
        images/{split}/world_{split}_{index:06d}.png

``"vqa"``
    VQA v2 question and annotation files (10 answers per question) plus the images::

        v2_OpenEnded_mscoco_{split}_questions.json
        v2_mscoco_{split}_annotations.json
        images/{split}/world_{split}_{index:06d}.png

``"av-manifest"``
    A VGGSound-like audio-visual manifest of the shapes scenes, with the ground truth
    needed to score sound source localization::

        manifest.csv       video_id,start_seconds,duration,label,split,frame,audio,annotation
        localization.json  {"clips": {video_id: {sounding objects, their masks, ...}}}
        frames/{split}/{video_id}.png
        audio/{split}/{video_id}.wav            16-bit PCM mono at the world's rate
        masks/{split}/{video_id}_sounding.png   0/255, union of the sounding objects
        masks/{split}/{video_id}_obj{k}.png     0/255, object k (drawing order)

``"ljspeech"``
    The LJSpeech-1.1 layout, for TTS and ASR loaders: each scene's first caption read by
    the world's narrator voice (:meth:`World.spoken_caption`)::

        metadata.csv        {id}|{transcription}|{normalized transcription}, no header
        wavs/{id}.wav       16-bit PCM mono at the world's rate (LJSpeech's is 22050 Hz)
        README.txt          what the export holds, its sample rate included

    with ``id`` = ``WORLD-{split}-{index:06d}``. Speech comes through the disk cache of
    :mod:`xmodal.world.voices` (``cache_dir``).

``"recipe1m"``
    Recipe1M-like layers of the recipes domain (:meth:`World.recipe`)::

        layer1.json         [{"id", "title", "ingredients": [{"text"}], "instructions":
                              [{"text"}], "partition", "url": ""}]
        layer2.json         [{"id", "images": [{"id": "{id}.png", "url": ""}]}]
        classes.json        {id: dish}
        images/{split}/{id}.png

    with ``id`` = ``world_{split}_{index:06d}`` and ``partition`` the split (Recipe1M's
    partitions are train, val and test, so the compositional split is refused).

``"esc50"``
    The ESC-50 layout (Piczak, 2015) of the world's labelled sounds
    (:meth:`World.labelled_sound`: each ``"colour shape"`` object over a place's ambience,
    and each place's ambience alone; 5 s clips, classes balanced)::

        meta/esc50.csv      filename,fold,target,category,esc10,src_file,take
        audio/{fold}-{clip_id}-A-{target}.wav   16-bit PCM mono at the world's rate

    Clip ``i`` of a split has class ``i % n_classes`` and fold ``(i // n_classes) % 5 + 1``,
    so each fold holds a fifth of every class's clips (ESC-50: 40 clips per class, 8 per
    fold, the default here too), and ``clip_id`` is the image id of ``(split, i)``. The
    clips come from the test split unless ``splits`` says otherwise.

``"flickr-soundnet"``
    The Flickr-SoundNet sound source localization test set (Senocak et al., 2018) as the
    public evaluation code of LVS, EZ-VSL and SLAVC reads it
    (:class:`~xmodal.data.sound_sources.FlickrSoundNet` reads it too)::

        frames/{id}.jpg               JPEG, quality 95, 4:4:4 colour
        audio/{id}.wav                16-bit PCM mono at the world's rate
        Annotations/{id}.xml          every split but train: the sounding objects' boxes
        metadata/flickr_train.txt     one id per line, no boxes (as Flickr's 10k/144k lists)
        metadata/flickr_{split}.csv   the other splits: one id per row (as flickr_test.csv)

    An annotation file is ``<annotation><filename>{id}.jpg</filename><bboxes>`` then, for
    each sounding object, three ``<bbox><annotator>k</annotator><xmin/><ymin/><xmax/>
    <ymax/></bbox>``: the object's tight box on Flickr's 256 x 256 grid (ends exclusive,
    rounded up so that ``int(S * v / 256)`` at the world's size ``S <= 256`` gives the
    box back exactly), drawn by three annotators who agree, since the world's truth has
    no disagreement; the public merge (boxes summed, halved, clipped to 1) then gives 1 on
    the boxes and 0 elsewhere. The reader skips each box's first element by position and
    takes every child of a root child as a box, so no other element there has children.

``"vggss"``
    The VGG-SS layout (Chen et al., 2021; :class:`~xmodal.data.sound_sources.VGGSS`)::

        frames/{id}.jpg               JPEG, quality 95, 4:4:4 colour
        audio/{id}.wav                16-bit PCM mono at the world's rate
        metadata/vggss.json           [{"file": id, "class": place, "bbox": [[xmin, ymin,
                                      xmax, ymax], ...]}] for every split but train
        metadata/vggss_train.txt      one id per line
        metadata/vggss_{split}.csv    the other splits: one id per row (as vggss_test.csv)

    with each sounding object's tight box divided by the image size (the nearest float
    at or above, so that ``int(v * S)`` at the world's size gives the box back exactly).

Ids are derived from the sample, so every export of a world agrees on them: the image
of ``(split, index)`` has id ``(split_number + 1) * 10**7 + index`` (train 0 is
10000000, val 0 is 20000000), question ``k`` of it has id ``image_id * 1000 + k``
(VQA's own convention), and the video id (Flickr-SoundNet's and VGG-SS's file id too)
is ``world_{split}_{index:06d}``.

Every export is written into a hidden temporary folder beside ``out_dir`` and renamed
into place at the end, so an interrupted export leaves nothing half-written; exporting
the same world twice gives byte-identical files (sorted JSON keys, PNG and 16-bit WAV
without timestamps, JPEG without metadata).

Example:
    >>> from xmodal.world import World
    >>> from xmodal.world.export import export
    >>> export(World(seed=0), "coco", "exports/coco", sizes={"train": 500, "val": 50, "test": 50})
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from xmodal._checks import check_bool, check_positive_int
from xmodal._io import atomic_dir
from xmodal.errors import ParameterError
from xmodal.world import voices
from xmodal.world.core import NARRATOR, Scene, World
from xmodal.world.schema import SPLITS, split_id

__all__ = [
    "DEFAULT_SIZES",
    "FORMATS",
    "answer_type",
    "esc50_fold",
    "export",
    "image_id",
    "ljspeech_id",
    "normalize_transcription",
    "question_id",
    "question_type",
]

DEFAULT_SIZES: dict[str, int] = {"train": 1000, "val": 200, "test": 200, "compositional": 200}

# Ids leave room for this many samples per split (see image_id).
_MAX_PER_SPLIT = 10**7
# VQA numbers question k of image i as i * 1000 + k.
_MAX_QUESTIONS = 1000

_NUMBER_WORDS = frozenset(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
)
# VQA v2's question types are the opening words of the question, from a fixed list of
# 65; these are the entries of that list the world's grammar can open with. The longest
# match wins; VQA's catch-all is "none of the above".
_QUESTION_TYPES = tuple(
    sorted(
        ("what is the color of the", "what color is the", "what is the", "what is", "what color",
         "what", "is there a", "is there", "is the", "is", "how many", "can you", "which"),
        key=len,
        reverse=True,
    )
)  # fmt: skip


def image_id(split: str, index: int) -> int:
    """The COCO/VQA image id of world sample ``(split, index)``: never 0, unique over splits."""
    return (split_id(split) + 1) * _MAX_PER_SPLIT + int(index)


def question_id(split: str, index: int, k: int) -> int:
    """The VQA question id of question ``k`` of world sample ``(split, index)``."""
    return image_id(split, index) * _MAX_QUESTIONS + int(k)


def _stem(split: str, index: int) -> str:
    return f"world_{split}_{index:06d}"


# ------------------------------------------------------------------------------ writing


def _json_bytes(obj) -> bytes:
    # Sorted keys and fixed separators: the same object always gives the same bytes.
    return (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode()


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _png_bytes(array: np.ndarray) -> bytes:
    """PNG of an ``(H, W, 3)`` or ``(H, W)`` uint8 array, with no metadata (no timestamp)."""
    # Pillow is a dependency of matplotlib, so it is always installed with xmodal.
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def _image_png(scene_image) -> bytes:
    return _png_bytes(scene_image.permute(1, 2, 0).numpy())  # (3, H, W) -> (H, W, 3)


def _mask_png(mask) -> bytes:
    return _png_bytes(mask.numpy().astype(np.uint8) * 255)


def _info(world: World, fmt: str) -> dict:
    from xmodal import __version__

    return {
        "description": f"xmodal world exported as {fmt}",
        "version": __version__,
        "world_seed": world.seed,
        "world_config": dataclasses.asdict(world.config),
    }


# ------------------------------------------------------------------------------ checks


def _check_splits(world: World, splits) -> tuple[str, ...]:
    if isinstance(splits, str) or not isinstance(splits, Iterable):
        raise ParameterError(f"splits must be a sequence of split names. Found: {splits!r}")
    splits = tuple(splits)
    if not splits:
        raise ParameterError("splits must name at least one split. Found: ()")
    for split in splits:
        if split not in SPLITS:
            raise ParameterError(f"unknown split {split!r} in splits; the splits are {SPLITS}")
        if split == "compositional" and not world.config.compositional:
            raise ParameterError("split 'compositional' exists only in World(compositional=True)")
    if len(set(splits)) != len(splits):
        raise ParameterError(f"splits must not repeat a split. Found: {splits}")
    return splits


def _check_sizes(sizes, splits: tuple[str, ...]) -> dict[str, int]:
    if isinstance(sizes, Mapping):
        missing = [s for s in splits if s not in sizes]
        extra = sorted(set(sizes) - set(splits))
        if missing or extra:
            raise ParameterError(
                f"sizes must give a size for exactly the splits {splits}. Found keys "
                f"{sorted(sizes)} (missing {missing}, unexpected {extra})"
            )
        out = {s: check_positive_int(sizes[s], f"sizes[{s!r}]") for s in splits}
    else:
        n = check_positive_int(sizes, "sizes")
        out = dict.fromkeys(splits, n)
    for split, n in out.items():
        if n > _MAX_PER_SPLIT:
            raise ParameterError(
                f"sizes[{split!r}] must be at most {_MAX_PER_SPLIT} (the id space per split). "
                f"Found: {n}"
            )
    return out


def _check_out_dir(out_dir, overwrite: bool) -> Path:
    try:
        out = Path(os.fspath(out_dir))
    except TypeError:
        raise ParameterError(f"out_dir must be a str or os.PathLike. Found: {out_dir!r}") from None
    if out.exists() and not out.is_dir():
        raise ParameterError(f"out_dir {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ParameterError(
            f"out_dir {str(out)!r} is not empty; choose an empty or new folder, or pass "
            f"overwrite=True to replace it"
        )
    return out


# ------------------------------------------------------------------------------ formats


def _export_coco(world: World, root: Path, sizes: dict[str, int]) -> None:
    karpathy, sentid, imgid = [], 1, 0
    for split, n in sizes.items():
        images, annotations = [], []
        for index in range(n):
            scene = world.scene(split, index, audio=False, questions=False)
            name = f"{_stem(split, index)}.png"
            _write_bytes(root / "images" / split / name, _image_png(scene.image))
            iid = image_id(split, index)
            sentences, sentids = [], []
            for caption in scene.captions:
                # Karpathy's tokens: the lower-cased words without punctuation.
                tokens = re.findall(r"[a-z0-9]+", caption.lower())
                sentences.append(
                    {"raw": caption, "tokens": tokens, "imgid": imgid, "sentid": sentid}
                )
                annotations.append({"id": sentid, "image_id": iid, "caption": caption})
                sentids.append(sentid)
                sentid += 1
            karpathy.append(
                {
                    "filename": name,
                    "filepath": f"images/{split}",
                    "split": split,
                    "sentids": sentids,
                    "imgid": imgid,
                    "sentences": sentences,
                    "cocoid": iid,
                }
            )
            _, height, width = scene.image.shape
            images.append({"id": iid, "file_name": name, "height": height, "width": width})
            imgid += 1
        captions = {
            "info": _info(world, "coco"),
            "licenses": [],
            "type": "captions",
            "images": images,
            "annotations": annotations,
        }
        _write_bytes(root / "annotations" / f"captions_{split}.json", _json_bytes(captions))
    _write_bytes(root / "dataset_coco.json", _json_bytes({"images": karpathy, "dataset": "coco"}))


def answer_type(answer: str) -> str:
    """VQA's answer type of an answer: ``"yes/no"``, ``"number"`` or ``"other"``."""
    if answer in ("yes", "no"):
        return "yes/no"
    if answer in _NUMBER_WORDS or answer.isdigit():
        return "number"
    return "other"


def question_type(question: str) -> str:
    """VQA's question type: the longest of its opening-word types that the question starts with."""
    text = question.lower()
    for prefix in _QUESTION_TYPES:  # longest first
        if text == prefix or text.startswith(prefix + " "):
            return prefix
    return "none of the above"


def _export_vqa(world: World, root: Path, sizes: dict[str, int]) -> None:
    if world.config.n_questions > _MAX_QUESTIONS:
        raise ParameterError(
            f"vqa numbers questions image_id * {_MAX_QUESTIONS} + k, so n_questions must be "
            f"at most {_MAX_QUESTIONS}. Found: {world.config.n_questions}"
        )
    for split, n in sizes.items():
        questions, annotations = [], []
        for index in range(n):
            scene = world.scene(split, index, audio=False)
            name = f"{_stem(split, index)}.png"
            _write_bytes(root / "images" / split / name, _image_png(scene.image))
            iid = image_id(split, index)
            for k, q in enumerate(scene.questions):
                qid = question_id(split, index, k)
                questions.append({"image_id": iid, "question": q.question, "question_id": qid})
                # Ten annotators who all agree: the world's answer is certain.
                answers = [
                    {"answer": q.answer, "answer_confidence": "yes", "answer_id": j}
                    for j in range(1, 11)
                ]
                annotations.append(
                    {
                        "question_id": qid,
                        "image_id": iid,
                        "question_type": question_type(q.question),
                        "answer_type": answer_type(q.answer),
                        "multiple_choice_answer": q.answer,
                        "answers": answers,
                    }
                )
        head = {"info": _info(world, "vqa"), "license": {"name": "CC0", "url": ""},
                "data_type": "mscoco", "data_subtype": split}  # fmt: skip
        _write_bytes(
            root / f"v2_OpenEnded_mscoco_{split}_questions.json",
            _json_bytes({**head, "task_type": "Open-Ended", "questions": questions}),
        )
        _write_bytes(
            root / f"v2_mscoco_{split}_annotations.json",
            _json_bytes({**head, "annotations": annotations}),
        )


_MANIFEST_COLUMNS = ("video_id", "start_seconds", "duration", "label", "split", "frame", "audio",
                     "annotation")  # fmt: skip


def _export_av(world: World, root: Path, sizes: dict[str, int]) -> None:
    from xmodal.audio import save

    rows, clips = [], {}
    sr = world.config.sample_rate
    for split, n in sizes.items():
        for index in range(n):
            scene: Scene = world.scene(split, index, questions=False)
            vid = _stem(split, index)
            frame = f"frames/{split}/{vid}.png"
            audio = f"audio/{split}/{vid}.wav"
            _write_bytes(root / frame, _image_png(scene.image))
            # 16-bit PCM as VGGSound's audio; a FLOAT WAV would carry libsndfile's PEAK
            # chunk, whose timestamp makes two exports differ. The mixture is within
            # [-1, 1] by construction (see schema.SIZES), so nothing clips.
            save(root / audio, scene.audio, sr, subtype="PCM_16")
            sounding_mask = f"masks/{split}/{vid}_sounding.png"
            _write_bytes(root / sounding_mask, _mask_png(scene.sounding_mask))
            objects = []
            for k, (obj, mask) in enumerate(zip(scene.objects, scene.masks, strict=True)):
                path = f"masks/{split}/{vid}_obj{k}.png"
                _write_bytes(root / path, _mask_png(mask))
                objects.append({**dataclasses.asdict(obj), "bbox": list(obj.bbox), "mask": path})
            duration = len(scene.audio) / sr
            clips[vid] = {
                "split": split,
                "index": index,
                "label": scene.place,
                "frame": frame,
                "audio": audio,
                "sample_rate": sr,
                "duration": duration,
                "sounding": scene.sounding,
                "sounding_mask": sounding_mask,
                "objects": objects,
            }
            rows.append((vid, "0.000", f"{duration:.3f}", scene.place, split, frame, audio,
                         f"localization.json#{vid}"))  # fmt: skip
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_MANIFEST_COLUMNS)
    writer.writerows(rows)
    _write_bytes(root / "manifest.csv", buf.getvalue().encode())
    sidecar = {"info": _info(world, "av-manifest"), "clips": clips}
    _write_bytes(root / "localization.json", _json_bytes(sidecar))


_NUMBER_NAMES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                 "fourteen fifteen sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS_NAMES = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    if n < 20:
        return _NUMBER_NAMES[n]
    if n < 100:
        return _TENS_NAMES[n // 10] + ("" if n % 10 == 0 else "-" + _NUMBER_NAMES[n % 10])
    head = f"{_NUMBER_NAMES[n // 100]} hundred"
    return head if n % 100 == 0 else f"{head} {_number_words(n % 100)}"


def normalize_transcription(text: str) -> str:
    """LJSpeech's third column: ``text`` with numbers 0 to 999 spelled out as words.

    The world's captions spell their numbers already, so for them it is the caption.

    Example:
        >>> normalize_transcription("boil for 10 minutes")
        'boil for ten minutes'
    """
    return re.sub(r"\b\d{1,3}\b", lambda m: _number_words(int(m.group())), text)


def ljspeech_id(split: str, index: int) -> str:
    """The LJSpeech-style id of world sample ``(split, index)``: ``WORLD-{split}-{index:06d}``."""
    return f"WORLD-{split}-{int(index):06d}"


_LJSPEECH_README = """\
xmodal world exported in the LJSpeech-1.1 layout.

metadata.csv: one line per clip, id|transcription|normalized transcription, no header,
UTF-8. The transcription is the first caption of the world's scene; the normalized
transcription spells out numbers (the captions already do).
wavs/{{id}}.wav: the caption read by the world's narrator voice (eSpeak NG {voice}),
mono 16-bit PCM at {sr} Hz. Note: LJSpeech-1.1 itself is 22050 Hz; this export keeps
the world's rate, so resample if a recipe expects 22050 Hz.

Clips: {n} ({splits}). World seed {seed}.
"""


def _export_ljspeech(world: World, root: Path, sizes: dict[str, int], cache_dir) -> None:
    from xmodal.audio import save

    sr = world.config.sample_rate
    # Synthesize the misses in parallel first; spoken_caption then reads the cache.
    captions = [world.sentence(split, i) for split, n in sizes.items() for i in range(n)]
    voices.speak_many(captions, [NARRATOR] * len(captions), sr=sr, cache_dir=cache_dir)
    lines = []
    for split, n in sizes.items():
        for index in range(n):
            spoken = world.spoken_caption(split, index, cache_dir=cache_dir)
            uid = ljspeech_id(split, index)
            # Resampled speech could overshoot full scale by a hair; 16-bit PCM cannot
            # hold it, so clip rather than fail the whole export.
            save(root / "wavs" / f"{uid}.wav", spoken.audio.clamp(-1.0, 1.0), sr,
                 subtype="PCM_16")  # fmt: skip
            text = " ".join(spoken.caption.split())  # no "|" or newline can leak in
            lines.append(f"{uid}|{text}|{normalize_transcription(text)}\n")
    _write_bytes(root / "metadata.csv", "".join(lines).encode())
    readme = _LJSPEECH_README.format(
        voice=NARRATOR.variant, sr=sr, n=len(lines),
        splits=", ".join(f"{s} {n}" for s, n in sizes.items()), seed=world.seed,
    )  # fmt: skip
    _write_bytes(root / "README.txt", readme.encode())


def _export_recipe1m(world: World, root: Path, sizes: dict[str, int], cache_dir) -> None:
    if "compositional" in sizes:
        raise ParameterError(
            "recipe1m has the partitions train, val and test; the split 'compositional' "
            "cannot be exported in it. Found splits: " + ", ".join(sizes)
        )
    layer1, layer2, classes = [], [], {}
    for split, n in sizes.items():
        for index in range(n):
            recipe = world.recipe(split, index)
            rid = _stem(split, index)
            name = f"{rid}.png"
            _write_bytes(root / "images" / split / name, _image_png(recipe.image))
            layer1.append(
                {
                    "id": rid,
                    "title": recipe.title,
                    "ingredients": [{"text": t} for t in recipe.ingredients],
                    "instructions": [{"text": t} for t in recipe.instructions],
                    "partition": split,
                    "url": "",
                }
            )
            layer2.append({"id": rid, "images": [{"id": name, "url": ""}]})
            classes[rid] = recipe.dish
    _write_bytes(root / "layer1.json", _json_bytes(layer1))
    _write_bytes(root / "layer2.json", _json_bytes(layer2))
    _write_bytes(root / "classes.json", _json_bytes(classes))


def _no_cache(writer):
    # The image formats need no speech: they take the same arguments and ignore cache_dir.
    def write(world: World, root: Path, sizes: dict[str, int], cache_dir) -> None:
        writer(world, root, sizes)

    return write


ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
ESC50_FOLDS = 5
ESC50_CLIPS_PER_CLASS = 40


def esc50_fold(index: int, n_classes: int) -> int:
    """The ESC-50 fold (1..5) of the world's labelled sound ``index``: each fold holds a
    fifth of every class's clips."""
    return (int(index) // n_classes) % ESC50_FOLDS + 1


def _export_esc50(world: World, root: Path, sizes: dict[str, int]) -> None:
    from xmodal.audio import save

    classes = world.sound_classes
    rows = []
    for split, n in sizes.items():
        for index in range(n):
            audio, target = world.labelled_sound(split, index)
            fold = esc50_fold(index, len(classes))
            clip = image_id(split, index)
            name = f"{fold}-{clip}-A-{target}.wav"
            save(root / "audio" / name, audio, world.config.sample_rate, subtype="PCM_16")
            rows.append((name, fold, target, classes[target], "False", clip, "A"))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ESC50_COLUMNS)
    writer.writerows(rows)
    _write_bytes(root / "meta" / "esc50.csv", buf.getvalue().encode())


def _jpeg_bytes(scene_image) -> bytes:
    """JPEG (quality 95) of a ``(3, H, W)`` uint8 image, with no metadata (no timestamp)."""
    from PIL import Image

    buf = io.BytesIO()
    # Full-resolution colour (4:4:4): halved chroma smears the objects' colours over their
    # outlines at 64 px (errors up to 0.33 of full scale against 0.08 here).
    Image.fromarray(np.ascontiguousarray(scene_image.permute(1, 2, 0).numpy())).save(
        buf, format="JPEG", quality=95, subsampling=0
    )
    return buf.getvalue()


def _export_sound_sources(
    world: World, root: Path, sizes: dict[str, int], prefix: str
) -> list[tuple[str, str, list[tuple[int, int, int, int]]]]:
    """Frames, audio and split lists of a Flickr-SoundNet / VGG-SS layout; returns
    ``(id, place, sounding boxes)`` of the scenes to annotate (every split but train)."""
    from xmodal.audio import save

    annotate = []
    for split, n in sizes.items():
        ids = []
        for index in range(n):
            scene: Scene = world.scene(split, index, questions=False)
            uid = _stem(split, index)
            _write_bytes(root / "frames" / f"{uid}.jpg", _jpeg_bytes(scene.image))
            # 16-bit PCM: no PEAK chunk timestamp (see _export_av); the mixture is in [-1, 1].
            save(root / "audio" / f"{uid}.wav", scene.audio, world.config.sample_rate,
                 subtype="PCM_16")  # fmt: skip
            ids.append(uid)
            if split != "train":
                boxes = [scene.objects[k].bbox for k in scene.sounding]
                annotate.append((uid, scene.place, boxes))
        if split == "train":  # a plain list of ids, as flickr_10k.txt
            _write_bytes(root / "metadata" / f"{prefix}_train.txt",
                         "".join(f"{uid}\n" for uid in ids).encode())  # fmt: skip
        else:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows([uid] for uid in ids)
            _write_bytes(root / "metadata" / f"{prefix}_{split}.csv", buf.getvalue().encode())
    return annotate


# Flickr-SoundNet's boxes are on frames resized to 256 x 256.
_FLICKR_GRID = 256
_FLICKR_ANNOTATORS = 3


def _flickr_grid(x: int, side: int) -> int:
    """Pixel ``x`` of a ``side``-pixel image on Flickr's 256 grid, rounded up: then
    ``v >= x * 256 / side``, so the reader's ``int(side * v / 256)`` is ``x`` again for
    ``side <= 256``."""
    return -(-x * _FLICKR_GRID // side)


def _export_flickr(world: World, root: Path, sizes: dict[str, int]) -> None:
    import xml.etree.ElementTree as ET

    side = world.config.image_size
    for uid, _, boxes in _export_sound_sources(world, root, sizes, "flickr"):
        annotation = ET.Element("annotation")
        ET.SubElement(annotation, "filename").text = f"{uid}.jpg"
        group = ET.SubElement(annotation, "bboxes")
        for box in boxes:
            grid = [_flickr_grid(x, side) for x in box]
            for k in range(1, _FLICKR_ANNOTATORS + 1):
                bbox = ET.SubElement(group, "bbox")
                ET.SubElement(bbox, "annotator").text = str(k)
                for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), grid, strict=True):
                    ET.SubElement(bbox, tag).text = str(v)
        ET.indent(annotation)
        text = ET.tostring(annotation, encoding="unicode") + "\n"
        _write_bytes(root / "Annotations" / f"{uid}.xml", text.encode())


def _vggss_unit(x: int, side: int) -> float:
    """Pixel ``x`` of a ``side``-pixel image in [0, 1]: ``x / side``, or the next float up
    when that times ``side`` falls short of ``x`` (``29 / 100 * 100`` is 28.999...): the
    reader truncates ``v * side`` to an int, and must get ``x`` back."""
    v = x / side
    return float(np.nextafter(v, 2.0)) if v * side < x else v


def _export_vggss(world: World, root: Path, sizes: dict[str, int]) -> None:
    side = world.config.image_size
    entries = []
    for uid, place, boxes in _export_sound_sources(world, root, sizes, "vggss"):
        unit_boxes = [[_vggss_unit(x, side) for x in box] for box in boxes]
        entries.append({"file": uid, "class": place, "bbox": unit_boxes})
    _write_bytes(root / "metadata" / "vggss.json", _json_bytes(entries))


_WRITERS: dict[str, Callable[[World, Path, dict[str, int], object], None]] = {
    "coco": _no_cache(_export_coco),
    "vqa": _no_cache(_export_vqa),
    "av-manifest": _no_cache(_export_av),
    "ljspeech": _export_ljspeech,
    "recipe1m": _export_recipe1m,
    "esc50": _no_cache(_export_esc50),
    "flickr-soundnet": _no_cache(_export_flickr),
    "vggss": _no_cache(_export_vggss),
}
FORMATS: tuple[str, ...] = tuple(_WRITERS)


# ------------------------------------------------------------------------------ export


def export(
    world: World,
    fmt: str,
    out_dir,
    *,
    splits=("train", "val", "test"),
    sizes: Mapping[str, int] | int | None = None,
    overwrite: bool = False,
    cache_dir=None,
) -> Path:
    """Write ``world`` to ``out_dir`` in the real-dataset format ``fmt``.

    Args:
        world: the :class:`~xmodal.world.World` to export.
        fmt: one of :data:`FORMATS`: ``"coco"``, ``"vqa"``, ``"av-manifest"``,
            ``"ljspeech"``, ``"recipe1m"``, ``"esc50"``, ``"flickr-soundnet"``, ``"vggss"``.
        out_dir: the folder to create; it must be new or empty unless ``overwrite``.
        splits: the world splits to export (``"esc50"``: the splits a dict of ``sizes``
            names, or by default the test split alone).
        sizes: samples per split, indices ``0 .. size - 1``: one int for every split,
            or a dict with one entry per split. Default :data:`DEFAULT_SIZES`
            (``"esc50"``: 40 clips per class, as ESC-50).
        overwrite: replace a non-empty ``out_dir``.
        cache_dir: the speech cache folder of :mod:`xmodal.world.voices` (``"ljspeech"``
            only); ``None`` for its default.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ParameterError: unknown format, split or size, or a non-empty ``out_dir``
            without ``overwrite``.
    """
    if not isinstance(world, World):
        raise ParameterError(f"world must be an xmodal.world.World. Found: {type(world).__name__}")
    if fmt not in _WRITERS:
        raise ParameterError(f"unknown export format {fmt!r}; the formats are {', '.join(FORMATS)}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise ParameterError(f"cache_dir must be None, a str or os.PathLike. Found: {cache_dir!r}")
    overwrite = check_bool(overwrite, "overwrite")
    if fmt == "esc50" and isinstance(sizes, Mapping):
        splits = tuple(sizes)  # the splits the sizes name
    elif fmt == "esc50" and tuple(splits) == ("train", "val", "test"):
        splits = ("test",)  # by default one folded set, of clips no training split holds
    splits = _check_splits(world, splits)
    if sizes is None and fmt == "esc50":
        sizes = {s: ESC50_CLIPS_PER_CLASS * len(world.sound_classes) for s in splits}
    elif sizes is None:
        sizes = {s: DEFAULT_SIZES[s] for s in splits}
    counts = _check_sizes(sizes, splits)
    out = _check_out_dir(out_dir, overwrite)

    # Built beside out_dir (same file system) and renamed into place: readers see either
    # no export or a whole one, never a half-written JSON file; an export written over is
    # dropped only once the new one is in place.
    with atomic_dir(out) as tmp:
        _WRITERS[fmt](world, tmp, counts, cache_dir)
    return out
