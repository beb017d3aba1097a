"""xmodal._io: atomic files and folders, their permissions, and the bytes callers write."""

from __future__ import annotations

import json
import os
import re
import stat

import numpy as np
import pytest

from xmodal import _io
from xmodal._io import atomic_dir, atomic_path, write_bytes, write_json, write_text

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writers_write_their_content_and_create_the_parent(tmp_path):
    path = tmp_path / "a" / "b" / "x.txt"
    assert write_text(path, "héllo\nwörld\n") == path
    assert path.read_bytes() == "héllo\nwörld\n".encode()
    assert write_bytes(tmp_path / "c" / "y.bin", b"\x00\xff") == tmp_path / "c" / "y.bin"
    assert (tmp_path / "c" / "y.bin").read_bytes() == b"\x00\xff"
    assert write_json(tmp_path / "d" / "z.json", {"k": [1, 2]}) == tmp_path / "d" / "z.json"
    assert (tmp_path / "d" / "z.json").read_text() == '{\n  "k": [\n    1,\n    2\n  ]\n}\n'
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["a", "b", "x.txt", "c", "y.bin", "d", "z.json"]
    )


def test_write_text_keeps_line_ends_as_given(tmp_path):
    write_text(tmp_path / "x.txt", "a\r\nb\n")
    assert (tmp_path / "x.txt").read_bytes() == b"a\r\nb\n"


def test_temp_file_is_a_hidden_sibling_and_replaces_the_old_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent
        assert re.fullmatch(r"\.model\.bin\.[0-9a-f]{8}\.tmp", tmp.name)
        assert tmp.read_bytes() == b""  # created empty, so a writer may open it by name
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"  # nothing visible before the context ends
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["model.bin"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_an_error_leaves_the_old_file_and_no_temp_file(tmp_path, exc):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(exc):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the new")
            raise exc("interrupted")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_an_error_before_any_file_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_json(tmp_path / "x.json", {"x": object()})
    assert os.listdir(tmp_path) == []


def test_a_failed_rename_leaves_no_temp_file(tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "inside").write_text("keep")
    with pytest.raises(OSError):
        write_text(folder, "a file cannot replace a non-empty folder")
    assert sorted(os.listdir(tmp_path)) == ["taken"]
    assert (folder / "inside").read_text() == "keep"


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_and_folders_get_the_mode_the_umask_gives(tmp_path, umask, mask):
    umask(mask)
    write_text(tmp_path / "new.txt", "x")
    assert _mode(tmp_path / "new.txt") == 0o666 & ~mask
    old = tmp_path / "old.txt"
    old.write_text("x")
    os.chmod(old, 0o600)
    write_text(old, "y")  # a replaced file does not pass its mode on
    assert _mode(old) == 0o666 & ~mask
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "f").write_text("x")
    assert _mode(tmp_path / "folder") == 0o777 & ~mask


@posix_only
def test_keep_mode_carries_the_replaced_files_mode_over(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "clip.wav"
    with atomic_path(path, keep_mode=True) as tmp:  # a new file: the umask's mode
        tmp.write_bytes(b"1")
    assert _mode(path) == 0o644
    os.chmod(path, 0o444)
    with atomic_path(path, keep_mode=True) as tmp:
        tmp.write_bytes(b"2")
    assert _mode(path) == 0o444
    assert path.read_bytes() == b"2"


def test_sync_fsyncs_the_file_and_its_folder_and_sync_false_does_not(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    write_bytes(tmp_path / "a", b"x")
    assert len(synced) == (2 if os.name == "posix" else 1)  # Windows cannot open a folder
    synced.clear()
    write_bytes(tmp_path / "b", b"x", sync=False)
    assert synced == []
    assert (tmp_path / "b").read_bytes() == b"x"


# ------------------------------------------------------------------------------ folders


def test_atomic_dir_builds_beside_and_keeps_the_old_folder_until_the_new_one_is_whole(
    tmp_path,
):
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.json").write_text("old")
    with atomic_dir(out) as tmp:
        assert tmp.parent == tmp_path
        assert re.fullmatch(r"\.export\.[0-9a-f]{8}\.tmp", tmp.name)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.json").write_text("new")
        assert sorted(os.listdir(out)) == ["old.json"]  # the old one, untouched
        assert (out / "old.json").read_text() == "old"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "sub",
        "sub/new.json",
    ]
    assert os.listdir(tmp_path) == ["export"]  # no temporary or old folder left


def test_atomic_dir_creates_a_new_folder_and_its_parent(tmp_path):
    out = tmp_path / "a" / "b" / "export"
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("x")
    assert (out / "x").read_text() == "x"
    assert os.listdir(out.parent) == ["export"]


def test_an_error_while_building_leaves_the_old_folder_and_no_temp_folder(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "half.json").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(os.listdir(out)) == ["old.json"]
    assert os.listdir(tmp_path) == ["export"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.json").write_text("old")
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp"):  # the swap of the new folder into place
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(_io.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        with atomic_dir(out) as tmp:
            (tmp / "new.json").write_text("new")
    assert sorted(os.listdir(out)) == ["old.json"]
    assert os.listdir(tmp_path) == ["export"]


# ------------------------------------------------------------------------------ callers


def test_vocabulary_file_has_the_same_bytes_as_before(tmp_path):
    from xmodal.text.vocab import Vocabulary

    vocab = Vocabulary.build([["café", "naïve", "日本"]], min_freq=1)
    path = vocab.save(tmp_path / "v" / "vocab.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    before = json.dumps(doc, ensure_ascii=False, indent=0) + "\n"  # what save wrote
    assert path.read_bytes() == before.encode("utf-8")
    assert "café" in path.read_text(encoding="utf-8")  # not \u-escaped
    assert Vocabulary.load(path).itos == vocab.itos


def test_char_tokenizer_file_has_the_same_bytes_as_before(tmp_path):
    from xmodal.text.lm_data import CharTokenizer

    tok = CharTokenizer.build("naïve café\n")
    path = tok.save(tmp_path / "chars.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert path.read_bytes() == (json.dumps(doc, ensure_ascii=False) + "\n").encode("utf-8")
    assert CharTokenizer.load(path).itos == tok.itos


def test_word_vectors_config_and_vocab_have_the_same_bytes_as_before(tmp_path):
    from xmodal.text.word2vec_vectors import WordVectors, _json_default

    words = ["café", "b", "c"]
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    wv = WordVectors(words, vectors, counts=np.array([5, 3, 1]), meta={"path": "ü"})
    folder = wv.save(tmp_path / "w2v")
    info = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    before = json.dumps(info, indent=2, default=_json_default).encode("utf-8") + b"\n"
    assert (folder / "config.json").read_bytes() == before
    assert b"\\u00fc" in before  # ensure_ascii, as before
    assert (folder / "vocab.txt").read_bytes() == "café 5\nb 3\nc 1\n".encode()
    back = WordVectors.load(folder)
    assert list(back.words) == words
    np.testing.assert_array_equal(back.vectors, vectors)


def test_vector_index_sidecar_has_the_same_bytes_as_before(tmp_path):
    pytest.importorskip("faiss")
    import torch

    from xmodal.matching.index import INDEX_FILE, META_FILE, VectorIndex

    gallery = torch.nn.functional.normalize(torch.randn(8, 4, generator=torch.Generator()), dim=1)
    index = VectorIndex.build(gallery, kind="flat", names=[f"ü{i}" for i in range(8)])
    folder = index.save(tmp_path / "index")
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    assert (folder / META_FILE).read_bytes() == json.dumps(meta).encode("ascii")  # no "\n"
    assert sorted(os.listdir(folder)) == sorted([META_FILE, INDEX_FILE])
    assert VectorIndex.load(folder).names == index.names
