"""The ESC-50 loader on the world's ESC-50 export: rows, folds and classes, audio equal to
the world's labelled sounds (16-bit), any rate and channel count read mono at the asked
rate, and a clear error naming the file and line for bad metadata or a missing clip."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
import torch

from xmodal.data.esc50 import ESC50
from xmodal.errors import DataError
from xmodal.world import World
from xmodal.world.export import esc50_fold, export


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="module")
def folder(world, tmp_path_factory):
    n = 2 * len(world.sound_classes)  # two clips per class: folds 1 and 2
    return export(world, "esc50", tmp_path_factory.mktemp("esc") / "esc50", sizes=n)


def test_the_export_reads_back_as_the_worlds_labelled_sounds(world, folder):
    clips = ESC50(folder, sample_rate=world.config.sample_rate)
    n = len(world.sound_classes)
    assert len(clips) == 2 * n and clips.classes == list(world.sound_classes)
    assert clips.folds.tolist() == [esc50_fold(i, n) for i in range(2 * n)]
    assert set(clips.folds.tolist()) == {1, 2}
    for i in (0, n - 1, n + 3):
        audio, target = world.labelled_sound("test", i)
        item = clips[i]
        assert item["target"] == target == int(clips.targets[i])
        assert item["category"] == world.sound_classes[target]
        assert item["filename"] == f"{item['fold']}-{30_000_000 + i}-A-{target}.wav"
        assert item["audio"].shape == (5 * world.config.sample_rate,)
        assert torch.allclose(item["audio"], audio, atol=1 / 32767)  # 16-bit PCM


def test_any_rate_and_channels_are_read_mono_at_the_asked_rate(folder, tmp_path):
    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    t = np.arange(44100 * 2) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1)
    sf.write(root / "audio" / "1-1-A-0.flac", 0.5 * stereo, 44100)
    sf.write(root / "audio" / "2-2-A-0.ogg", 0.5 * stereo[:, 0], 44100, subtype="VORBIS")
    (root / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category\n1-1-A-0.flac,1,0,tone\n2-2-A-0.ogg,2,0,tone\n"
    )
    clips = ESC50(root, sample_rate=16000, seconds=5.0)
    for item in (clips[0], clips[1]):  # stereo FLAC and mono Ogg Vorbis, at 44.1 kHz
        assert item["audio"].shape == (80000,)  # 2 s read, padded with silence to 5 s
        assert float(item["audio"][:32000].abs().max()) == pytest.approx(0.5, abs=0.02)
        assert float(item["audio"][32100:].abs().max()) == 0.0


@pytest.mark.parametrize(
    "row, message",
    [
        (["x.wav", "6", "0", "dog"], r"line 2: fold must be one of 1\.\.5\. Found: 6"),
        (["x.wav", "one", "0", "dog"], "line 2: fold and target must be integers"),
        (["x.wav", "1", "-1", "dog"], "line 2: target must be >= 0"),
    ],
)
def test_bad_metadata_names_the_file_and_line(tmp_path, row, message):
    (tmp_path / "meta").mkdir()
    with open(tmp_path / "meta" / "esc50.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "fold", "target", "category"], row])
    with pytest.raises(DataError, match=f"esc50.csv' {message}"):
        ESC50(tmp_path)


def test_missing_files_and_columns_are_named(folder, tmp_path):
    with pytest.raises(DataError, match="meta/esc50.csv' does not exist"):
        ESC50(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("filename,target\nx.wav,0\n")
    with pytest.raises(DataError, match=r"lacks the columns \['fold', 'category'\]"):
        ESC50(tmp_path)
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold,target,category\nx.wav,1,0,dog\n")
    with pytest.raises(DataError, match="x.wav' .listed in meta/esc50.csv. does not exist"):
        ESC50(tmp_path)[0]
    (tmp_path / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category\na.wav,1,0,dog\nb.wav,2,0,cat\n"
    )
    with pytest.raises(DataError, match="target 0 is both 'dog' and 'cat'"):
        ESC50(tmp_path)
