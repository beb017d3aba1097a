"""`xmodal world export` and `xmodal world preview`, run in-process through `main(argv)`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from xmodal import cli
from xmodal.cli import main
from xmodal.world import World
from xmodal.world.export import DEFAULT_SIZES, FORMATS
from xmodal.world.preview import DOMAINS


def test_help_everywhere(capsys):
    for argv in (["world", "--help"], ["world", "export", "--help"],
                 ["world", "preview", "--help"]):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert "usage: xmodal world" in capsys.readouterr().out


def test_cli_lists_match_the_library():
    # The CLI spells these out to stay light to import; they must not drift.
    assert cli.WORLD_FORMATS == FORMATS
    assert cli.WORLD_DOMAINS == DOMAINS
    assert cli.WORLD_DEFAULT_SIZES == ", ".join(
        f"{s} {DEFAULT_SIZES[s]}" for s in ("train", "val", "test")
    )


def test_export_writes_the_seeded_world(tmp_path, capsys):
    out = tmp_path / "coco"
    assert main(["world", "export", "--format", "coco", "--out", str(out), "--seed", "3",
                 "--size", "2"]) == 0  # fmt: skip
    assert f"wrote {out}" in capsys.readouterr().out
    images = json.loads((out / "dataset_coco.json").read_text())["images"]
    assert [im["split"] for im in images] == ["train"] * 2 + ["val"] * 2 + ["test"] * 2
    assert [s["raw"] for s in images[0]["sentences"]] == World(seed=3).scene(
        "train", 0, audio=False, questions=False
    ).captions
    # A second run into the same folder needs --overwrite.
    assert main(["world", "export", "--format", "vqa", "--out", str(out), "--size", "1"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["world", "export", "--format", "vqa", "--out", str(out), "--size", "1",
                 "--overwrite"]) == 0  # fmt: skip
    assert not (out / "dataset_coco.json").exists()
    assert (out / "v2_mscoco_test_annotations.json").is_file()


def test_preview_writes_a_figure(tmp_path, capsys):
    out = tmp_path / "figs" / "grid.png"
    argv = ["world", "preview", "--domain", "places", "-n", "2", "--out", str(out), "--dpi", "40"]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 0  # a drawing, not a blank page
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]  # no temporary file left


def test_ljspeech_export_uses_the_given_speech_cache(tmp_path, capsys):
    out, cache = tmp_path / "lj", tmp_path / "cache"
    argv = ["world", "export", "--format", "ljspeech", "--out", str(out), "--size", "1",
            "--seed", "2", "--cache-dir", str(cache)]  # fmt: skip
    assert main(argv) == 0
    assert "ljspeech, world seed 2" in capsys.readouterr().out
    world = World(seed=2)
    lines = (out / "metadata.csv").read_text().splitlines()
    assert [line.split("|")[:2] for line in lines] == [
        [f"WORLD-{s}-000000", world.scene(s, 0, audio=False, questions=False).captions[0]]
        for s in ("train", "val", "test")
    ]
    assert len(list((out / "wavs").glob("*.wav"))) == 3
    assert len(list(cache.glob("*.npy"))) == 3  # the speech went to --cache-dir


@pytest.mark.parametrize("domain", ["faces", "recipes"])
def test_preview_draws_the_new_domains(tmp_path, capsys, domain):
    out, cache = tmp_path / f"{domain}.png", tmp_path / "cache"
    argv = ["world", "preview", "--domain", domain, "-n", "2", "--out", str(out), "--dpi", "40",
            "--cache-dir", str(cache)]  # fmt: skip
    assert main(argv) == 0
    assert f"2 {domain} of train" in capsys.readouterr().out
    with Image.open(out) as im:
        assert np.asarray(im.convert("RGB")).std() > 0
    # Only faces speak: their speech is cached in --cache-dir, recipes touch no cache.
    assert cache.is_dir() == (domain == "faces")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["export", "--format", "libri", "--out", "{tmp}/x"], ["'libri'", "coco", "recipe1m"]),
        (["export", "--format", "coco", "--out", "{tmp}/x", "--size", "0"], ["--size", "0"]),
        (["export", "--format", "coco", "--out", "{tmp}/x", "--seed", "-1"], ["seed", "-1"]),
        (["export", "--format", "coco", "--out", "{tmp}/full"], ["not empty", "--overwrite"]),
        (["preview", "--domain", "voices", "--out", "{tmp}/g.png"], ["'voices'", "recipes"]),
        (["preview", "--domain", "scenes", "-n", "0", "--out", "{tmp}/g.png"], ["n must"]),
        (["preview", "--domain", "scenes", "--split", "dev", "--out", "{tmp}/g.png"], ["'dev'"]),
        (["preview", "--domain", "scenes", "--out", "{tmp}/g.txt"], ["--out", "g.txt"]),
    ],
)
def test_bad_arguments_end_with_one_line(tmp_path, capsys, argv, words):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("keep")
    argv = ["world"] + [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("xmodal: error: ") and captured.err.count("\n") == 1
    for word in words:
        assert word in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing written
    assert (tmp_path / "full" / "keep.txt").read_text() == "keep"
