"""Galleries: embedding in batches equals embedding at once, ranked hits equal a sort of
the scores, image and caption galleries find what brute force finds, an image folder
indexed to disk (gallery.json written atomically) opens back with clear errors, and the
searches of ``xmodal predict retrieval`` (text, image, arithmetic, tags) find what brute
force finds, every input checked before a gallery is made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from xmodal.errors import DataError, ParameterError
from xmodal.matching.arithmetic import embedding_arithmetic
from xmodal.matching.gallery import (
    GALLERY_FILE,
    CaptionGallery,
    Embedder,
    ImageGallery,
    check_query_text,
    embed_batches,
    index_image_folder,
    is_image_path,
    open_image_gallery,
    ranked,
    search_queries,
    split_galleries,
    tag_words,
)
from xmodal.matching.index import VectorIndex


def _embed(images: torch.Tensor) -> torch.Tensor:
    """A fixed 'model': the unit mean colour and brightness spread of each image, (B, 4)."""
    x = torch.cat([images.mean(dim=(2, 3)), images.std(dim=(1, 2, 3))[:, None]], dim=1)
    return F.normalize(x + 1e-3, dim=-1)


def test_embed_batches_equals_one_pass_for_tensors_lists_and_ranges():
    images = torch.rand(7, 3, 4, 4)
    seen = []

    def embed(batch):
        seen.append(len(batch))
        return _embed(batch)

    out = embed_batches(embed, images, batch_size=3, device="cpu")
    assert seen == [3, 3, 1] and torch.allclose(out, _embed(images), atol=1e-6)
    words = ["a", "bb", "ccc", "dddd", "e"]
    lengths = embed_batches(lambda b: torch.tensor([[len(w)] for w in b]), words, batch_size=2)
    assert lengths[:, 0].tolist() == [1, 2, 3, 4, 1]
    rows = embed_batches(lambda r: torch.tensor(list(r))[:, None], range(5), batch_size=4)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert not embed_batches(
        lambda b: b.requires_grad_(), torch.ones(2, 1), batch_size=1
    ).requires_grad


def test_ranked_is_each_row_s_top_k_best_first_clipped_to_the_gallery():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.7]])
    assert ranked(scores, 2) == [[(1, pytest.approx(0.9)), (2, pytest.approx(0.5))],
                                 [(2, pytest.approx(0.7)), (0, pytest.approx(0.3))]]  # fmt: skip
    assert [[j for j, _ in row] for row in ranked(scores, 10)] == [[1, 2, 0], [2, 0, 1]]


def test_image_and_caption_galleries_find_what_brute_force_finds():
    torch.manual_seed(0)
    images = torch.rand(6, 3, 4, 4)
    emb = _embed(images)
    gallery = ImageGallery(VectorIndex.build(emb, names=[f"img{i}" for i in range(6)]),
                           images.__getitem__)  # fmt: skip
    query = F.normalize(torch.rand(4), dim=0)
    want = (emb @ query).topk(3)
    hits = gallery.search(query, 3)
    assert [h["index"] for h in hits] == want.indices.tolist()
    assert [h["image"] for h in hits] == [f"img{j}" for j in want.indices.tolist()]
    assert [h["score"] for h in hits] == [round(s, 4) for s in want.values.tolist()]
    assert torch.equal(gallery.image(hits[0]["index"]), images[want.indices[0]])
    texts = ["t0", "t1", "t2", "t3", "t4", "t5"]
    captions = CaptionGallery(VectorIndex.build(emb), texts, [f"img{i // 2}" for i in range(6)])
    hits = captions.search(query, 2)
    assert [h["caption"] for h in hits] == [texts[j] for j in want.indices[:2].tolist()]
    assert [h["image"] for h in hits] == [f"img{j // 2}" for j in want.indices[:2].tolist()]


def _folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    torch.manual_seed(1)
    images = (torch.rand(3, 3, 8, 8) * 255).round().to(torch.uint8)
    for i, name in enumerate(["b.png", "a.png", "sub/c.png"]):
        Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"hidden")
    return folder, images


def _read(path) -> torch.Tensor:
    try:
        array = torch.from_numpy(np.array(Image.open(path).convert("RGB")))
    except Exception as error:  # as load_image: an unreadable file is a DataError
        raise DataError(f"{path} is not an image") from error
    return array.permute(2, 0, 1).float() / 255


def test_an_image_folder_is_indexed_to_disk_and_opens_back(tmp_path):
    folder, images = _folder(tmp_path)
    out = tmp_path / "index"
    info = index_image_folder(folder, out, embed=_embed, read=_read, batch_size=2,
                              meta={"run": "r", "image_size": 8})  # fmt: skip
    assert info == {"indexed": 3, "skipped": 1, "skipped_files": ["notes.txt"], "dim": 4,
                    "kind": "flat", "out": str(out)}  # fmt: skip
    meta = json.loads((out / GALLERY_FILE).read_text())
    assert meta == {"root": str(folder.resolve()), "run": "r", "image_size": 8, "indexed": 3,
                    "skipped": 1, "skipped_files": ["notes.txt"]}  # fmt: skip
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    gallery = open_image_gallery(out, dim=4, read=_read)
    assert gallery.index.names == ["a.png", "b.png", "sub/c.png"]  # sorted paths
    order = [1, 0, 2]  # a.png is image 1, b.png image 0
    want = _embed(images[order].float() / 255)
    scores, ids = gallery.index.search(want, k=1)
    assert ids[:, 0].tolist() == [0, 1, 2]
    assert torch.allclose(scores[:, 0], torch.ones(3), atol=1e-4)
    assert torch.allclose(gallery.image(2), images[2].float() / 255)


def test_bad_folders_and_galleries_are_clear_errors(tmp_path):
    folder, _ = _folder(tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        index_image_folder(folder / "a.png", tmp_path / "i", embed=_embed, read=_read)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("x")
    with pytest.raises(DataError, match=r"no readable image in .*\(1 files, 1 skipped\)"):
        index_image_folder(empty, tmp_path / "i", embed=_embed, read=_read)
    with pytest.raises(ParameterError, match="kind must be one of"):
        index_image_folder(folder, tmp_path / "i", embed=_embed, read=_read, kind="tree")
    out = tmp_path / "index"
    index_image_folder(folder, out, embed=_embed, read=_read)
    with pytest.raises(
        ParameterError, match="holds 4-d vectors but this run's model embeds in 8-d"
    ):
        open_image_gallery(out, dim=8, read=_read)
    for broken in ("{not json", '{"folder": "x"}', "[1]"):
        (out / GALLERY_FILE).write_text(broken)
        with pytest.raises(DataError, match="is not a gallery file of `xmodal retrieval index`"):
            open_image_gallery(out, dim=4, read=_read)
    (out / GALLERY_FILE).unlink()
    with pytest.raises(DataError, match="has no gallery.json"):
        open_image_gallery(out, dim=4, read=_read)


def test_tag_words_and_image_paths():
    words = ["a", "red", "circle", "the", "picture", "2", "left-of", "shapes", "star"]
    assert tag_words(words) == ["red", "circle", "star"]
    assert is_image_path("query.PNG") and is_image_path("x/y.jpeg")
    assert not is_image_path("a red circle")


# ----------------------------------------------------------------------------- searches

CAPTIONS = [["a red circle", "a circle"], ["a blue square"], ["a green star", "a star"]]


@pytest.fixture(scope="module")
def joint():
    """A small random joint embedding, its vocabulary and three 16x16 images."""
    from xmodal.matching.joint import JointEmbedding
    from xmodal.text.vocab import Vocabulary

    torch.manual_seed(0)
    vocab = Vocabulary.build([c for cs in CAPTIONS for c in cs])
    model = JointEmbedding(
        len(vocab), encoder_kwargs={"channels": 4}, embed_dim=8, word_dim=4, hidden=4
    )
    return model.train(), vocab, torch.rand(3, 3, 16, 16)


def test_the_embedder_is_the_model_in_eval_mode_batch_by_batch(joint):
    model, vocab, images = joint
    embed = Embedder(model, 2, vocab=vocab, max_len=4)
    texts = [c for cs in CAPTIONS for c in cs]
    got = embed.texts(texts)
    assert not model.training and not got.requires_grad
    with torch.no_grad():
        want = model.embed_texts(*vocab.encode_batch(texts, max_len=4))
        assert torch.allclose(got, want, atol=1e-6)  # padding changes nothing
        assert torch.allclose(embed.images(images), model.embed_images(images), atol=1e-6)
    assert embed.check("a red zebra") == "a red zebra"
    with pytest.raises(
        ParameterError, match=r"no word is in the vocabulary \(out of vocabulary: zebra\)"
    ):
        check_query_text("zebra", vocab)
    with pytest.raises(ParameterError, match="query text '  ' has no words"):
        check_query_text("  ", vocab)


def test_a_split_s_galleries_name_images_and_own_captions(joint):
    model, vocab, images = joint
    embed = Embedder(model, 2, vocab=vocab, max_len=8)
    image_gallery, caption_gallery = split_galleries(images, CAPTIONS, embed, split="val")
    assert image_gallery.index.names == ["val/0", "val/1", "val/2"]
    assert torch.equal(image_gallery.image(1), images[1])
    assert caption_gallery.texts == [c for cs in CAPTIONS for c in cs]
    assert caption_gallery.owners == ["val/0", "val/0", "val/1", "val/2", "val/2"]


def test_searches_find_what_brute_force_finds_and_write_their_figures(joint, tmp_path):
    model, vocab, images = joint
    embed = Embedder(model, 2, vocab=vocab, max_len=8)
    path = tmp_path / "q.png"
    Image.fromarray((images[2] * 255).round().byte().permute(1, 2, 0).numpy()).save(path)
    made = []

    def split():
        made.append(1)
        return images, CAPTIONS

    records = search_queries(
        ["a red circle", str(path)],
        tmp_path / "out",
        embed,
        read_image=_read,
        split=split,
        k=2,
        image=[str(path)],
        minus=["circle"],
        plus=["star"],
        tags=True,
    )
    assert len(made) == 1  # the galleries are made once
    text, first, second = records
    assert [r["kind"] for r in records] == ["text", "arithmetic", "arithmetic"]
    img = embed.images(images)
    want = (img @ embed.texts(["a red circle"])[0]).topk(2).indices.tolist()
    assert [h["index"] for h in text["results"]] == want and "tags" not in text
    assert [h["image"] for h in text["results"]] == [f"test/{j}" for j in want]
    assert first["input"] == "q.png - circle + star" and first["results"] == second["results"]
    query = embed.images(_read(path)[None])[0]
    minus, plus = embed.texts(["circle", "star"])
    want = (img @ embedding_arithmetic(query, [minus], [plus])).topk(2).indices.tolist()
    assert [h["index"] for h in first["results"]] == want
    words = tag_words(vocab.itos[len(vocab.specials) :])
    vec = embedding_arithmetic(query, [minus], [plus])
    want = (embed.texts(words) @ vec).topk(2).indices.tolist()
    assert [t["tag"] for t in first["tags"]] == [words[j] for j in want]
    assert first["text"].endswith("| tags: " + ", ".join(words[j] for j in want))
    names = [Path(f).name for r in records for f in r["files"]]
    assert names == ["text-0_top_images.png", "q-1_top_images.png", "q-2_top_images.png"]
    # An image query without arithmetic: the split's top captions.
    (record,) = search_queries(
        [], tmp_path / "out", embed, read_image=_read, split=split, k=3, image=[str(path)]
    )
    texts = [c for cs in CAPTIONS for c in cs]
    want = (embed.texts(texts) @ query).topk(3).indices.tolist()
    assert [h["caption"] for h in record["results"]] == [texts[j] for j in want]
    assert record["kind"] == "image" and record["files"][0].endswith("q-0_top_captions.png")


@pytest.mark.parametrize(
    "inputs, options, message",
    [
        ([], {}, "needs a text or an image query. Found none"),
        (["a red circle"], {"minus": ["circle"]}, "--minus and --plus apply to an image query"),
        (["a red circle"], {"k": 0}, "top_k must be an integer >= 1"),
        (["a red circle", "zebra"], {}, "out of vocabulary: zebra"),
        (["missing.png"], {}, "missing.png"),
        (["q.png"], {"plus": ["zebra"]}, "out of vocabulary: zebra"),
    ],
)
def test_bad_queries_are_refused_before_any_gallery_is_made(
    joint, tmp_path, inputs, options, message
):
    model, vocab, images = joint
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(tmp_path / "q.png")
    inputs = [str(tmp_path / x) if x.endswith(".png") else x for x in inputs]

    def split():
        raise AssertionError("a gallery was made")

    options = {"k": 2, **options}
    with pytest.raises((ParameterError, DataError), match=message):
        search_queries(
            inputs,
            tmp_path,
            Embedder(model, 2, vocab=vocab, max_len=8),
            read_image=_read,
            split=split,
            **options,
        )
