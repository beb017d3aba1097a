"""Frames with their sounds from a manifest: the world's ``av-manifest`` export, and how
a user points the audio–visual tasks at a folder of their own.

The layout (``xmodal world export --format av-manifest`` writes it; VGGSound-like)::

    manifest.csv   video_id,start_seconds,duration,label,split,frame,audio[,annotation]
    <frame>        an image file, relative to the folder
    <audio>        any format soundfile reads, relative to the folder

A split's items are its rows: ``image`` (3, H, W) in [0, 1] at ``image_size``, ``audio``
mono at ``sample_rate`` cut or zero-padded to ``seconds``, ``place`` (the label's index
among the manifest's sorted labels, the same in every split), ``index``::

    clips = AVManifest("my-clips", "train", image_size=64, sample_rate=16000, seconds=1.0)
    clips.classes   # the labels, sorted
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch.utils.data import Dataset

from xmodal._checks import check_positive_int, check_positive_number
from xmodal.errors import DataError

__all__ = ["AVManifest"]

_REQUIRED = ("video_id", "label", "split", "frame", "audio")


class AVManifest(Dataset):
    """The rows of ``split`` in ``root/manifest.csv`` (see the module)."""

    def __init__(
        self, root, split: str, *, image_size: int, sample_rate: int, seconds: float
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.image_size = check_positive_int(image_size, "image_size")
        self.sample_rate = check_positive_int(sample_rate, "sample_rate")
        self.n_samples = int(round(check_positive_number(seconds, "seconds") * sample_rate))
        self.manifest = self.root / "manifest.csv"
        if not self.manifest.is_file():
            raise DataError(f"{str(self.manifest)!r} does not exist: not an av-manifest folder")
        with open(self.manifest, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{str(self.manifest)!r} lacks the columns {missing}")
            rows = [(line, row) for line, row in enumerate(reader, start=2)]
        self.classes = sorted({row["label"] for _, row in rows})
        self.rows = [(line, row) for line, row in rows if row["split"] == split]
        if not self.rows:
            splits = sorted({row["split"] for _, row in rows})
            raise DataError(
                f"{str(self.manifest)!r} has no row of split {split!r}; it has {splits}"
            )
        self.places = torch.tensor([self.classes.index(row["label"]) for _, row in self.rows])

    def __len__(self) -> int:
        return len(self.rows)

    def _file(self, line: int, row: dict, column: str) -> Path:
        path = self.root / row[column]
        if not path.is_file():
            raise DataError(
                f"{str(self.manifest)!r} line {line}: its {column} {str(path)!r} does not exist"
            )
        return path

    def __getitem__(self, i: int) -> dict:
        from xmodal.audio.io import load_clip
        from xmodal.data.images import load_image

        line, row = self.rows[i]
        image = load_image(self._file(line, row, "frame"), size=self.image_size)
        audio = load_clip(self._file(line, row, "audio"), sr=self.sample_rate,
                          n_samples=self.n_samples)  # fmt: skip
        return {"image": image, "audio": audio, "place": int(self.places[i]), "index": i}
