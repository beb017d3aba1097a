"""VQA v1/v2 question and annotation files with their images.

VQA v2 ships one pair of JSON files per split (``SUBTYPE`` is e.g. ``train2014``,
``val2014``; the world's export uses ``train`` / ``val`` / ``test``)::

    v2_OpenEnded_mscoco_SUBTYPE_questions.json
        {"questions": [{"question_id": 262148000, "image_id": 262148,
                        "question": "Where is he looking?"}, ...],
         "data_subtype": "val2014", "task_type": "Open-Ended", ...}
    v2_mscoco_SUBTYPE_annotations.json
        {"annotations": [{"question_id": 262148000, "image_id": 262148,
                          "answers": [{"answer": "down", "answer_id": 1, ...}, ... 10],
                          "multiple_choice_answer": "down",
                          "question_type": "none of the above", "answer_type": "other"},
                         ...], ...}

:class:`VQAv2` reads one split: one item per question with its image (``(3, H, W)``
float32 in [0, 1]), ``question``, the human ``answers`` (all of them, for the VQA
accuracy), ``answer`` (``multiple_choice_answer``, the most common), ``question_id``,
``image_id``, ``question_type``, ``answer_type`` and ``index``. Questions and answers are
checked when the dataset is made; an image is read when its item is (a missing one
raises DataError naming the file).

Images are found by their id. ``image_names``:

- ``"coco"``: ``COCO_{subtype}_{image_id:012d}.jpg``, in ``image_root`` or
  ``image_root/{subtype}`` (the official layout: ``val2014/COCO_val2014_...jpg``);
- ``"world"``: the world's export (:func:`xmodal.world.export.export` with ``"vqa"``),
  ``images/{split}/world_{split}_{index:06d}.png`` for image id
  ``(split_number + 1) * 10**7 + index``;
- ``"auto"`` (default): ``"world"`` when the questions file says it is an xmodal world
  export (``info.description``), else ``"coco"``;
- a format string with the fields ``{subtype}`` and ``{image_id}``, relative to
  ``image_root``.

Example:
    >>> ds = VQAv2.from_folder("exports/vqa", "val", image_size=64)
    >>> item = ds[0]
    >>> item["question"], item["answers"][:2]
    ('how many objects are there?', ['three', 'three'])
"""

from __future__ import annotations

import operator
import os
from pathlib import Path

from torch.utils.data import Dataset

from xmodal._checks import check_index
from xmodal.data._json import read_json
from xmodal.data.images import _check_size, load_image
from xmodal.errors import DataError, ParameterError

__all__ = ["IMAGE_NAMES", "VQAv2", "questions_file", "annotations_file"]

IMAGE_NAMES = ("auto", "coco", "world")
# The world's export numbers images (split_number + 1) * 10**7 + index, splits in this
# order (xmodal.world.schema.SPLITS; spelled out here because data does not import world).
_WORLD_SPLITS = ("train", "val", "test", "compositional")
_WORLD_PER_SPLIT = 10**7


def questions_file(root, subtype: str) -> Path:
    """``root/v2_OpenEnded_mscoco_{subtype}_questions.json``."""
    return Path(root) / f"v2_OpenEnded_mscoco_{subtype}_questions.json"


def annotations_file(root, subtype: str) -> Path:
    """``root/v2_mscoco_{subtype}_annotations.json``."""
    return Path(root) / f"v2_mscoco_{subtype}_annotations.json"


def _read_json(path: Path, what: str, key: str) -> dict:
    data = read_json(path, f"VQA {what} file")
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise DataError(f'{path} is not a VQA {what} file: it needs a top-level "{key}" list')
    return data


def _field(entry, key: str, kind, where: str, path: Path):
    if not isinstance(entry, dict):
        raise DataError(f"{path}: {where} must be an object. Found: {entry!r}")
    if key not in entry:
        raise DataError(f"{path}: {where} has no field {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{path}: {where}.{key} must be a {name}. Found: {value!r}")
    return value


def _ids(ids) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return ", ".join(str(i) for i in ids[:5]) + more


def _world_name(image_id: int, subtype: str) -> list[str]:
    number, index = divmod(image_id, _WORLD_PER_SPLIT)
    split = _WORLD_SPLITS[number - 1] if 1 <= number <= len(_WORLD_SPLITS) else subtype
    return [f"images/{split}/world_{split}_{index:06d}.png"]


def _coco_name(image_id: int, subtype: str) -> list[str]:
    name = f"COCO_{subtype}_{image_id:012d}.jpg"
    return [name, f"{subtype}/{name}"]


class VQAv2(Dataset):
    """One split of VQA: a questions file, its annotations file and the image folder.

    Args:
        questions: the ``..._questions.json`` file.
        annotations: the ``..._annotations.json`` file.
        image_root: the folder the images are found in (see ``image_names``).
        image_size: resize every image to ``(size, size)`` or ``(height, width)``; None
            keeps each file's size.
        image_names: ``"auto"``, ``"coco"``, ``"world"`` or a format string (module doc).

    Raises:
        ParameterError: a bad argument (path type, ``image_size``, ``image_names``).
        DataError: a missing or non-JSON file; an entry without its fields; a question id
            twice; questions without annotations or annotations without questions (the
            ids are named); an annotation about another image than its question; an empty
            answer list; a missing ``image_root``.
    """

    def __init__(
        self,
        questions,
        annotations,
        image_root,
        *,
        image_size: int | tuple[int, int] | None = None,
        image_names: str = "auto",
    ) -> None:
        for name, value in (("questions", questions), ("annotations", annotations),
                            ("image_root", image_root)):  # fmt: skip
            if not isinstance(value, (str, os.PathLike)):
                raise ParameterError(f"{name} must be a str or os.PathLike. Found: {value!r}")
        self.image_size = _check_size(image_size, "image_size")
        if not isinstance(image_names, str) or (
            image_names not in IMAGE_NAMES and "{image_id" not in image_names
        ):
            raise ParameterError(
                f"image_names must be one of {', '.join(map(repr, IMAGE_NAMES))} or a format "
                f"string with {{image_id}} (and {{subtype}}). Found: {image_names!r}"
            )
        self.questions_path, self.annotations_path = Path(questions), Path(annotations)
        self.image_root = Path(image_root)
        if not self.image_root.is_dir():
            raise DataError(f"image_root {self.image_root} is not a folder")

        qdata = _read_json(self.questions_path, "questions", "questions")
        adata = _read_json(self.annotations_path, "annotations", "annotations")
        self.subtype = str(qdata.get("data_subtype", ""))
        if image_names == "auto":
            info = qdata.get("info")
            described = info.get("description", "") if isinstance(info, dict) else ""
            image_names = "world" if str(described).startswith("xmodal world") else "coco"
        self.image_names = image_names

        qpath, apath = self.questions_path, self.annotations_path
        rows: dict[int, tuple[int, str]] = {}
        for i, q in enumerate(qdata["questions"]):
            where = f"questions[{i}]"
            qid = _field(q, "question_id", int, where, qpath)
            if qid in rows:
                raise DataError(f"{qpath}: question id {qid} appears more than once")
            rows[qid] = (_field(q, "image_id", int, where, qpath),
                         _field(q, "question", str, where, qpath))  # fmt: skip
        notes: dict[int, dict] = {}
        for i, a in enumerate(adata["annotations"]):
            where = f"annotations[{i}]"
            qid = _field(a, "question_id", int, where, apath)
            if qid in notes:
                raise DataError(f"{apath}: question id {qid} is annotated more than once")
            answers = _field(a, "answers", list, where, apath)
            if not answers:
                raise DataError(f"{apath}: {where} (question {qid}) has no answers")
            texts = [
                _field(ans, "answer", str, f"{where}.answers[{j}]", apath)
                for j, ans in enumerate(answers)
            ]
            mc = a.get("multiple_choice_answer")
            notes[qid] = {
                "image_id": _field(a, "image_id", int, where, apath),
                "answers": texts,
                "answer": mc if isinstance(mc, str) else max(texts, key=texts.count),
                "question_type": str(a.get("question_type", "")),
                "answer_type": str(a.get("answer_type", "")),
            }
        unanswered, unasked = set(rows) - set(notes), set(notes) - set(rows)
        if unanswered or unasked:
            parts = []
            if unanswered:
                parts.append(f"questions without annotations: {_ids(unanswered)}")
            if unasked:
                parts.append(f"annotations of no question: {_ids(unasked)}")
            raise DataError(
                f"{qpath} and {apath} do not match ({'; '.join(parts)}): they must hold the "
                "same question ids (are they the same split?)"
            )
        self._items: list[dict] = []
        for qid, (image_id, question) in rows.items():
            note = notes[qid]
            if note["image_id"] != image_id:
                raise DataError(
                    f"question {qid} is about image {image_id} in {qpath} but image "
                    f"{note['image_id']} in {apath}"
                )
            self._items.append({"question_id": qid, "image_id": image_id,
                                "question": question, **note})  # fmt: skip
        self._paths: dict[int, Path] = {}

    # ------------------------------------------------------------------ lookups

    @classmethod
    def from_folder(cls, root, subtype: str, **kwargs) -> VQAv2:
        """The split ``subtype`` of a folder in the VQA v2 layout (the world's export): its
        :func:`questions_file` and :func:`annotations_file`, images under ``root``."""
        if not isinstance(subtype, str) or not subtype:
            raise ParameterError(
                f"subtype must be a split name such as 'val2014'. Found: {subtype!r}"
            )
        if not isinstance(root, (str, os.PathLike)):
            raise ParameterError(f"root must be a str or os.PathLike. Found: {root!r}")
        return cls(questions_file(root, subtype), annotations_file(root, subtype), root, **kwargs)

    def image_path(self, image_id: int) -> Path:
        """The file the image ``image_id`` is read from (the first candidate that exists)."""
        if image_id not in self._paths:
            if self.image_names == "world":
                names = _world_name(image_id, self.subtype)
            elif self.image_names == "coco":
                names = _coco_name(image_id, self.subtype)
            else:
                try:
                    names = [self.image_names.format(image_id=image_id, subtype=self.subtype)]
                except (KeyError, IndexError, ValueError) as e:
                    raise ParameterError(
                        f"image_names {self.image_names!r} must use only {{image_id}} and "
                        f"{{subtype}}: {e}"
                    ) from e
            paths = [self.image_root / n for n in names]
            self._paths[image_id] = next((p for p in paths if p.is_file()), paths[0])
        return self._paths[image_id]

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index) -> dict:
        i = check_index(index, len(self._items), "VQAv2")
        item = self._items[i]
        return {
            "image": load_image(self.image_path(item["image_id"]), size=self.image_size),
            **{k: (list(v) if isinstance(v, list) else v) for k, v in item.items()},
            "index": i,
        }

    def record(self, index: int) -> dict:
        """Item ``index`` without its image (no file is read)."""
        item = self._items[operator.index(index)]
        return {**item, "answers": list(item["answers"])}

    @property
    def questions(self) -> list[str]:
        return [it["question"] for it in self._items]

    @property
    def answers(self) -> list[list[str]]:
        """Every question's human answers, in item order."""
        return [list(it["answers"]) for it in self._items]

    @property
    def image_ids(self) -> list[int]:
        return [it["image_id"] for it in self._items]

    def __repr__(self) -> str:
        return (
            f"VQAv2({str(self.questions_path)!r}, subtype={self.subtype!r}, size={len(self)}, "
            f"image_size={self.image_size})"
        )
