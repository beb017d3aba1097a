"""ESC-50 (Piczak, 2015) and any folder in its layout: environmental sound clips in five
folds, scored by the official protocol, the mean accuracy over the five train-on-four,
test-on-one splits.

The layout (``xmodal world export --format esc50`` writes the world's labelled sounds in
it)::

    meta/esc50.csv     filename,fold,target,category[,esc10,src_file,take]
    audio/<filename>   any format soundfile reads (ESC-50's: 5 s, 44.1 kHz, mono WAV)

Each clip is read mono at ``sample_rate`` (resampled with soxr, channels averaged) and cut
or zero-padded to ``seconds`` (ESC-50's clips are all 5 s)::

    clips = ESC50("ESC-50-master", sample_rate=16000)
    clips[0]   # {"audio": (80000,), "target": 0, "fold": 1, "category": "dog", ...}
    clips.folds  # (N,) the fold of every clip, 1..5
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch.utils.data import Dataset

from xmodal._checks import check_positive_int, check_positive_number
from xmodal.errors import DataError

__all__ = ["ESC50", "ESC50_FOLDS"]

ESC50_FOLDS = (1, 2, 3, 4, 5)
_REQUIRED = ("filename", "fold", "target", "category")


class ESC50(Dataset):
    """The clips of an ESC-50-layout folder ``root`` (see the module)."""

    def __init__(self, root, *, sample_rate: int = 16000, seconds: float = 5.0) -> None:
        self.root = Path(root)
        self.sample_rate = check_positive_int(sample_rate, "sample_rate")
        self.n_samples = int(round(check_positive_number(seconds, "seconds") * self.sample_rate))
        meta = self.root / "meta" / "esc50.csv"
        if not meta.is_file():
            raise DataError(f"{str(meta)!r} does not exist: not an ESC-50 folder")
        with open(meta, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{str(meta)!r} lacks the columns {missing}")
            self.rows = [self._row(meta, k + 2, row) for k, row in enumerate(reader)]
        if not self.rows:
            raise DataError(f"{str(meta)!r} lists no clip")
        categories: dict[int, str] = {}
        for row in self.rows:
            if categories.setdefault(row["target"], row["category"]) != row["category"]:
                raise DataError(
                    f"{str(meta)!r}: target {row['target']} is both "
                    f"{categories[row['target']]!r} and {row['category']!r}"
                )
        self.classes = [categories.get(t, "") for t in range(max(categories) + 1)]
        self.folds = torch.tensor([row["fold"] for row in self.rows])
        self.targets = torch.tensor([row["target"] for row in self.rows])

    @staticmethod
    def _row(meta: Path, line: int, row: dict) -> dict:
        where = f"{str(meta)!r} line {line}"
        try:
            fold, target = int(row["fold"]), int(row["target"])
        except ValueError:
            raise DataError(f"{where}: fold and target must be integers. Found "
                            f"{row['fold']!r}, {row['target']!r}") from None  # fmt: skip
        if fold not in ESC50_FOLDS:
            raise DataError(f"{where}: fold must be one of 1..5. Found: {fold}")
        if target < 0:
            raise DataError(f"{where}: target must be >= 0. Found: {target}")
        return {"filename": row["filename"], "fold": fold, "target": target,
                "category": row["category"]}  # fmt: skip

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        from xmodal.audio.io import load_clip

        row = self.rows[i]
        path = self.root / "audio" / row["filename"]
        if not path.is_file():
            raise DataError(f"{str(path)!r} (listed in meta/esc50.csv) does not exist")
        return {"audio": load_clip(path, sr=self.sample_rate, n_samples=self.n_samples), **row}
