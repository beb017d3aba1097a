"""im2recipe (Salvador et al., CVPR 2017): recipes and pictures of dishes in one space.

The recipe side reads the two parts of a recipe with their own recurrent encoders:

- ingredients: a bidirectional LSTM over the word vectors of the ingredient lines (all
  lines' words in order), its last hidden state of each direction;
- instructions: a hierarchy, as the paper's skip-thought stage: an LSTM over each
  sentence's words gives one vector per sentence, then an LSTM over the sentence vectors,
  its last hidden state;

the two are joined and projected to ``embed_dim``. The image side is any
:mod:`xmodal.vision` encoder's global vector through a Linear. Both are L2-normalised, so
``img @ rec.T`` is a cosine similarity. :attr:`Im2Recipe.classifier` is the semantic
regularisation head: *one* Linear that predicts the dish class from either modality's
embedding, which pulls both into a space organised by class.

The objective, :func:`im2recipe_loss`: the cosine embedding loss with a margin on
matching pairs (target +1) and non-matching ones (-1, about 20% of the pairs, made by
:func:`pair_targets`), plus the classifier's cross entropy on both sides as a small
auxiliary term (the paper's code weighs them 0.98 / 0.01 / 0.01: ``semantic_weight=0.02``).

Example::

    model = Im2Recipe(len(vocab), n_classes=12)
    img = model.embed_images(images)                                   # (B, D)
    rec = model.embed_recipes(ingr, ingr_len, instr, n_sent, sent_len)  # (B, D)
    rows, target = pair_targets(len(img), negatives=0.2, rng=np.random.default_rng(0))
    loss, parts = im2recipe_loss(img, rec[rows], target, margin=0.1,
                                 img_logits=model.classifier(img),
                                 rec_logits=model.classifier(rec), labels=labels)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_bool, check_positive_int, check_positive_number
from xmodal.errors import ParameterError
from xmodal.nn.losses import LogitScale, info_nce_loss
from xmodal.text.vocab import PAD_ID
from xmodal.vision.encoders import create_encoder

__all__ = [
    "Im2Recipe",
    "InstructionEncoder",
    "RecipeEncoder",
    "im2recipe_loss",
    "pair_targets",
]


def _check_int_tensor(x, name: str, ndim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != ndim or x.is_floating_point():
        found = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be an integer tensor with {ndim} dims. Found: {found}")
    return x


def _check_lengths(lengths, name: str, shape: tuple[int, ...], maximum: int) -> torch.Tensor:
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(lengths)
    if tuple(lengths.shape) != shape or lengths.is_floating_point():
        raise ParameterError(
            f"{name} must be an integer tensor of shape {shape}. "
            f"Found {lengths.dtype} {tuple(lengths.shape)}"
        )
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > maximum):
        raise ParameterError(
            f"{name} must be in [0, {maximum}]. Found {int(lengths.min())}..{int(lengths.max())}"
        )
    return lengths


def _last_hidden(rnn: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x (B, L, C)`` with valid lengths ``(B,)`` >= 1 → the last hidden state of each
    direction, concatenated: ``(B, directions * H)``. Padding never changes it."""
    packed = nn.utils.rnn.pack_padded_sequence(
        x, lengths.cpu(), batch_first=True, enforce_sorted=False
    )
    _, (h, _) = rnn(packed)  # (directions, B, H)
    return torch.cat(list(h), dim=-1)


class InstructionEncoder(nn.Module):
    """Sentences → vectors → one vector: an LSTM over each sentence's word vectors (its
    last hidden state is the sentence's vector), then an LSTM over the sentence vectors.

    ``forward(words (B, S, W, word_dim), n_sentences (B,), sentence_lengths (B, S))`` →
    ``(B, hidden)``; sentence ``s >= n_sentences[b]`` (length 0) is padding and ignored.
    """

    def __init__(self, word_dim: int, *, sentence_hidden: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.sentence = nn.LSTM(word_dim, sentence_hidden, batch_first=True)
        self.document = nn.LSTM(sentence_hidden, hidden, batch_first=True)

    def forward(
        self, words: torch.Tensor, n_sentences: torch.Tensor, sentence_lengths: torch.Tensor
    ) -> torch.Tensor:
        b, s, w, c = words.shape
        valid = sentence_lengths > 0  # (B, S)
        # Only the real sentences are encoded (a batch pads most recipes' sentence lists).
        sent = _last_hidden(self.sentence, words[valid], sentence_lengths[valid])  # (N, Hs)
        vectors = sent.new_zeros(b, s, sent.shape[-1])
        vectors[valid] = sent  # (B, S, Hs)
        return _last_hidden(self.document, vectors, n_sentences)  # (B, H)


class RecipeEncoder(nn.Module):
    """A recipe's ingredients and instructions → one unit vector ``(B, embed_dim)``.

    Args:
        vocab_size: words in the vocabulary (``<pad>`` = 0 embeds to zeros).
        word_dim: word embedding size (ingredients and instructions share the embedding).
        ingredient_hidden: the ingredient biLSTM's hidden size per direction.
        sentence_hidden, instruction_hidden: the two LSTMs of :class:`InstructionEncoder`.
        embed_dim: output size.
        word_init: optional ``(vocab_size, word_dim)`` initial word embedding, e.g. from
            :func:`xmodal.text.word2vec.embedding_from_word2vec`.

    ``forward(ingredients (B, Li), ingredient_lengths (B,), instructions (B, S, W),
    n_sentences (B,), sentence_lengths (B, S))``: every recipe needs >= 1 ingredient word
    and >= 1 sentence of >= 1 word; beyond the lengths is padding.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        word_dim: int = 128,
        ingredient_hidden: int = 128,
        sentence_hidden: int = 128,
        instruction_hidden: int = 256,
        embed_dim: int = 256,
        word_init: torch.Tensor | None = None,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        vocab_size = check_positive_int(vocab_size, "vocab_size")
        word_dim = check_positive_int(word_dim, "word_dim")
        for name, value in (("ingredient_hidden", ingredient_hidden),
                            ("sentence_hidden", sentence_hidden),
                            ("instruction_hidden", instruction_hidden),
                            ("embed_dim", embed_dim)):  # fmt: skip
            check_positive_int(value, name)
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=PAD_ID)
        if word_init is not None:
            if tuple(word_init.shape) != (vocab_size, word_dim):
                raise ParameterError(
                    f"word_init must have shape ({vocab_size}, {word_dim}). "
                    f"Found {tuple(word_init.shape)}"
                )
            with torch.no_grad():
                self.embed.weight.copy_(word_init)
        self.ingredients = nn.LSTM(word_dim, ingredient_hidden, batch_first=True,
                                   bidirectional=True)  # fmt: skip
        self.instructions = InstructionEncoder(
            word_dim, sentence_hidden=sentence_hidden, hidden=instruction_hidden
        )
        self.proj = nn.Linear(2 * ingredient_hidden + instruction_hidden, embed_dim)
        self.norm = nn.BatchNorm1d(embed_dim) if check_bool(batch_norm, "batch_norm") else None

    def forward(
        self,
        ingredients: torch.Tensor,
        ingredient_lengths: torch.Tensor,
        instructions: torch.Tensor,
        n_sentences: torch.Tensor,
        sentence_lengths: torch.Tensor,
    ) -> torch.Tensor:
        ingredients = _check_int_tensor(ingredients, "ingredients", 2)
        instructions = _check_int_tensor(instructions, "instructions", 3)
        b, li = ingredients.shape
        _, s, w = instructions.shape
        if b == 0 or instructions.shape[0] != b:
            raise ParameterError(
                "ingredients (B, Li) and instructions (B, S, W) must hold the same B >= 1 "
                f"recipes. Found {tuple(ingredients.shape)} and {tuple(instructions.shape)}"
            )
        ingredient_lengths = _check_lengths(ingredient_lengths, "ingredient_lengths", (b,), li)
        n_sentences = _check_lengths(n_sentences, "n_sentences", (b,), s)
        sentence_lengths = _check_lengths(sentence_lengths, "sentence_lengths", (b, s), w)
        if int(ingredient_lengths.min()) < 1 or int(n_sentences.min()) < 1:
            raise ParameterError(
                "every recipe needs at least one ingredient word and one instruction: "
                f"found ingredient_lengths {ingredient_lengths.tolist()}, "
                f"n_sentences {n_sentences.tolist()}"
            )
        used = torch.arange(s, device=n_sentences.device)[None, :] < n_sentences[:, None]
        if bool(((sentence_lengths > 0) != used.to(sentence_lengths.device)).any()):
            raise ParameterError(
                "sentence_lengths must be >= 1 for the first n_sentences sentences of each "
                "recipe and 0 after them"
            )
        ingr = _last_hidden(self.ingredients, self.embed(ingredients), ingredient_lengths)
        instr = self.instructions(self.embed(instructions), n_sentences, sentence_lengths)
        z = self.proj(torch.cat([ingr, instr], dim=-1))  # (B, D)
        return F.normalize(self.norm(z) if self.norm is not None else z, dim=-1)


class Im2Recipe(nn.Module):
    """An image encoder and a :class:`RecipeEncoder` in one unit sphere, with one dish
    classifier shared by both.

    Args:
        vocab_size: words in the recipe vocabulary.
        n_classes: dish classes of :attr:`classifier` (0: no classifier, no semantic
            regularisation).
        encoder: an :func:`xmodal.vision.create_encoder` name; ``encoder_kwargs`` its
            arguments.
        embed_dim: the joint space's dimension.
        word_dim, ingredient_hidden, sentence_hidden, instruction_hidden, word_init: the
            recipe encoder's.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        n_classes: int = 0,
        encoder: str = "small-cnn",
        encoder_kwargs: dict | None = None,
        embed_dim: int = 256,
        word_dim: int = 128,
        ingredient_hidden: int = 128,
        sentence_hidden: int = 128,
        instruction_hidden: int = 256,
        word_init: torch.Tensor | None = None,
        batch_norm: bool = True,
        logit_scale_init: float = 1 / 0.07,
    ) -> None:
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        batch_norm = check_bool(batch_norm, "batch_norm")
        n_classes = check_positive_int(n_classes, "n_classes", minimum=0)
        self.encoder = create_encoder(encoder, **(encoder_kwargs or {}))
        self.img_proj = nn.Linear(self.encoder.feature_info.channels, embed_dim)
        self.img_norm = nn.BatchNorm1d(embed_dim) if batch_norm else None
        self.recipe = RecipeEncoder(
            vocab_size,
            word_dim=word_dim,
            ingredient_hidden=ingredient_hidden,
            sentence_hidden=sentence_hidden,
            instruction_hidden=instruction_hidden,
            embed_dim=embed_dim,
            word_init=word_init,
            batch_norm=batch_norm,
        )
        self.classifier = nn.Linear(embed_dim, n_classes) if n_classes else None
        self.logit_scale = LogitScale(logit_scale_init)  # the InfoNCE objective's temperature
        self.embed_dim, self.n_classes = embed_dim, n_classes

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [0, 1] or uint8 → ``(B, embed_dim)`` unit vectors."""
        v = self.encoder.forward_head(self.encoder.forward_features(images))  # (B, C)
        z = self.img_proj(v)  # (B, D)
        return F.normalize(self.img_norm(z) if self.img_norm is not None else z, dim=-1)

    def embed_recipes(self, ingredients, ingredient_lengths, instructions, n_sentences,
                      sentence_lengths) -> torch.Tensor:  # fmt: skip
        """See :class:`RecipeEncoder` → ``(B, embed_dim)`` unit vectors."""
        return self.recipe(ingredients, ingredient_lengths, instructions, n_sentences,
                           sentence_lengths)  # fmt: skip

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Dish logits ``(B, n_classes)`` of image *or* recipe embeddings ``(B, D)``."""
        if self.classifier is None:
            raise ParameterError("this Im2Recipe has no classifier (n_classes=0)")
        return self.classifier(embeddings)

    def forward(self, images, ingredients, ingredient_lengths, instructions, n_sentences,
                sentence_lengths) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """``(img (B, D), rec (B, D))``, both L2-normalised."""
        rec = self.embed_recipes(ingredients, ingredient_lengths, instructions, n_sentences,
                                 sentence_lengths)  # fmt: skip
        return self.embed_images(images), rec


# ----------------------------------------------------------------------------- objective


def pair_targets(n: int, *, negatives: float = 0.2, rng: np.random.Generator):
    """Which recipe each of ``n`` images is paired with in a step, and the pair's target.

    ``round(negatives * n)`` rows, drawn by ``rng``, get another row's recipe (target -1);
    the others keep their own (target +1). Returns ``(rows (n,) long, target (n,) float)``:
    pair ``i`` is (image ``i``, recipe ``rows[i]``). ``rows[i] != i`` exactly where
    ``target[i] == -1``. With ``n == 1`` there is no other recipe: no negative.
    """
    n = check_positive_int(n, "n")
    if not (isinstance(negatives, (int, float)) and 0.0 <= negatives < 1.0):
        raise ParameterError(f"negatives must be a fraction in [0, 1). Found: {negatives!r}")
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng must be a numpy.random.Generator. Found: {rng!r}")
    k = int(round(negatives * n)) if n > 1 else 0
    rows = np.arange(n)
    target = np.ones(n, dtype=np.float32)
    neg = rng.choice(n, size=k, replace=False)
    rows[neg] = (neg + rng.integers(1, n, size=k)) % n  # any row but its own
    target[neg] = -1.0
    return torch.from_numpy(rows), torch.from_numpy(target)


def im2recipe_loss(
    img: torch.Tensor,
    rec: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    logit_scale: torch.Tensor | float | None = None,
    margin: float = 0.1,
    semantic_weight: float = 0.02,
    img_logits: torch.Tensor | None = None,
    rec_logits: torch.Tensor | None = None,
    img_labels: torch.Tensor | None = None,
    rec_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """im2recipe's objective on ``B`` pairs (image ``img[k]``, recipe ``rec[k]``).

    ``(1 - w) * match + w / 2 * (CE(img_logits, img_labels) + CE(rec_logits, rec_labels))``
    with ``w = semantic_weight``. The matching term is the paper's cosine loss by default,
    :func:`torch.nn.functional.cosine_embedding_loss` with ``target`` (+1 / -1 per pair):
    ``1 - cos(img, rec)`` for +1, ``max(0, cos(img, rec) - margin)`` for -1, averaged.
    With ``logit_scale`` (and no ``target``: row ``k`` of ``rec`` is ``img[k]``'s recipe)
    it is instead the symmetric InfoNCE of :func:`xmodal.nn.losses.info_nce_loss` over the
    batch, every other recipe a negative. The weights are the paper's code's (0.98 / 0.01
    / 0.01 at ``w = 0.02``); ``w = 0`` is the matching term alone and needs no logits.

    Returns ``(loss, parts)``: ``parts`` holds ``cos`` (or ``nce``) and, with ``w > 0``,
    ``cls_img`` and ``cls_rec`` as floats for logging.
    """
    margin = check_positive_number(margin, "margin", allow_zero=True)
    if margin >= 1.0:
        raise ParameterError(f"margin must be in [0, 1) (a cosine). Found: {margin}")
    w = check_positive_number(semantic_weight, "semantic_weight", allow_zero=True)
    if w > 1.0:
        raise ParameterError(f"semantic_weight must be in [0, 1]. Found: {w}")
    if (target is None) == (logit_scale is None):
        raise ParameterError(
            "give target (+1/-1 per pair: the cosine loss) or logit_scale (InfoNCE), not both"
        )
    b = img.shape[0]
    if img.ndim != 2 or img.shape != rec.shape or (target is not None and target.shape != (b,)):
        found = tuple(target.shape) if target is not None else None
        raise ParameterError(
            "img and rec must have shape (B, D) and target (B,). Found "
            f"{tuple(img.shape)}, {tuple(rec.shape)}, {found}"
        )
    if target is None:
        match = info_nce_loss(img, rec, logit_scale)
        parts = {"nce": float(match.detach())}
    else:
        match = F.cosine_embedding_loss(img, rec, target.to(img), margin=margin)
        parts = {"cos": float(match.detach())}
    if w == 0:
        return match, parts
    if any(x is None for x in (img_logits, rec_logits, img_labels, rec_labels)):
        raise ParameterError("semantic_weight > 0 needs img/rec logits and labels")
    cls_img = F.cross_entropy(img_logits, img_labels)
    cls_rec = F.cross_entropy(rec_logits, rec_labels)
    parts.update(cls_img=float(cls_img.detach()), cls_rec=float(cls_rec.detach()))
    return (1 - w) * match + 0.5 * w * (cls_img + cls_rec), parts
