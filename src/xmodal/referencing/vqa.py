"""Visual question answering as classification over the frequent answers.

Three ways to let the question consult the image (``fusion``):

- ``"product"``: "deeper LSTM Q + norm I" of Antol et al. (2015): the pooled image vector,
  L2-normalised, and the question vector are each mapped to ``embed_dim`` through a
  linear layer and tanh, then multiplied element-wise;
- ``"concat"``: the same two vectors concatenated;
- ``"san"``: the stacked attention network of Yang et al. (2016). Every location of the
  image's feature map is mapped to ``v_i = tanh(W_I f_i + b_I)``; starting from the
  question vector ``u_0 = v_Q``, each of ``hops`` attention layers looks at the map with
  ``u_{k-1}`` as the query (additive attention, :class:`xmodal.vision.AdditiveAttention`,
  the one soft visual attention of xmodal) and refines ``u_k = u_{k-1} + sum_i p_i v_i``.
  The attention maps ``p`` of every hop are returned: where the model looked.
  ``readout`` says what the classifier reads: ``"sum"``, the paper's ``u_K``, or
  ``"concat"`` (the default), ``[v_Q, c_1, ..., c_K, v_Q * c_1, ..., v_Q * c_K, v_Q * v_I,
  vec(r ⊗ v_Q)]``: every hop's context ``c_k = sum_i p_i v_i`` kept apart, as Kazemi &
  Elqursh (2017) concatenate their glimpses, each also multiplied by the question vector
  (a bilinear check of what the hop found against what the question describes, as in
  MLB/MCB fusion); the product baseline's ``v_Q * v_I`` of the pooled image, which keeps
  how much of a kind the image shows where softmax attention normalises it away
  (counting, existence); and where the hops looked, ``r = (x_1, y_1, ..., x_K, y_K)``,
  each hop's attended position ``sum_i p_i (x_i, y_i)`` (cell centres, the map spanning
  ``[-1, 1]``), times every component of the question vector, so a relation word can
  compare two hops' positions ("is the circle left of the square?": ``x_1 - x_2`` against
  "left"), which a context vector, blind to where it was taken, cannot. On the world this
  learns much faster than ``"sum"`` (docs/vqa.md).

The fused vector goes through one classifier head for all: dropout, linear, tanh,
dropout, linear to ``n_answers`` logits.

The question is read by :class:`xmodal.text.encoders.QuestionEncoder`: an LSTM (the
papers') or a GRU, whose last hidden state is its vector, or a
:class:`~xmodal.text.encoders.TransformerTextEncoder`.

An image is encoded once however many questions ask about it: ``forward`` takes the
images ``(B, 3, H, W)``, the questions ``(Q, L)`` and ``image_index (Q,)``, the image row
each question is about (``None``: question ``q`` is about image ``q``).

Example::

    model = VQAModel(len(vocab), len(answers), fusion="san")
    tokens, lengths = vocab.encode_batch(questions)              # (Q, L), (Q,)
    out = model(images, tokens, lengths)                         # Q == B
    out.logits.shape, out.attention.shape                        # (Q, A), (Q, 2, 8, 8)
    probs, ids = model.answer(images, tokens, lengths, top_k=3)  # (Q, 3) each
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_choice, check_positive_int
from xmodal.errors import ParameterError

# The question encoder lives in xmodal.text.encoders; re-exported here for existing imports.
from xmodal.text.encoders import QUESTION_ENCODERS, QuestionEncoder
from xmodal.vision.attention import AdditiveAttention
from xmodal.vision.encoders import create_encoder

__all__ = [
    "FUSIONS",
    "QUESTION_ENCODERS",
    "READOUTS",
    "QuestionEncoder",
    "VQAModel",
    "VQAOutput",
    "attended_positions",
]

FUSIONS = ("product", "concat", "san")
READOUTS = ("concat", "sum")


@dataclass
class VQAOutput:
    """``logits`` (Q, n_answers); ``attention`` (Q, hops, H', W') for ``san``, else None."""

    logits: torch.Tensor
    attention: torch.Tensor | None = None


def _check_dropout(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ParameterError(f"{name} must be in [0, 1). Found: {value!r}")
    return float(value)


def attended_positions(attention: torch.Tensor) -> torch.Tensor:
    """Where each hop looked: ``attention (Q, K, h, w)`` → ``(Q, 2 K)``, hop by hop the
    expected ``(x, y)`` of the cell centres under its map, the map spanning ``[-1, 1]``
    (x to the right, y down)."""
    q, k, h, w = attention.shape
    xs = (torch.arange(w, device=attention.device, dtype=attention.dtype) + 0.5) * 2 / w - 1
    ys = (torch.arange(h, device=attention.device, dtype=attention.dtype) + 0.5) * 2 / h - 1
    x = (attention.sum(dim=2) * xs).sum(dim=-1)  # (Q, K): the columns' mass times x
    y = (attention.sum(dim=3) * ys).sum(dim=-1)  # (Q, K)
    return torch.stack([x, y], dim=-1).flatten(1)  # (Q, 2K): x_1, y_1, x_2, y_2, ...


class VQAModel(nn.Module):
    """An image encoder, a question encoder, a fusion and an answer classifier.

    Args:
        vocab_size: words in the question vocabulary.
        n_answers: the answer classes (the top-K training answers).
        fusion: ``"product"``, ``"concat"`` or ``"san"`` (see the module doc).
        encoder, encoder_kwargs: an :func:`xmodal.vision.create_encoder` name and its
            arguments.
        question_encoder: ``"lstm"``, ``"gru"`` or ``"transformer"``.
        word_dim, hidden, question_layers: the question encoder's word embedding size,
            recurrent hidden size and layers (transformer: blocks).
        text_heads, text_max_len: the transformer's heads and longest question in tokens.
        embed_dim: the size of the question vector, the image vector(s) and the fused
            vector (``2 * embed_dim`` for ``concat``).
        attention_dim: the additive attention's hidden size (``san``).
        hops: attention layers (``san``; the paper's best has 2).
        readout: what the classifier reads of ``san``: ``"concat"`` (the question vector,
            every hop's context alone and times the question, the pooled product, the
            hops' attended positions times the question) or ``"sum"`` (the paper's
            ``u_K``).
        classifier_hidden: the hidden layer of the answer classifier.
        dropout: before each classifier layer (and between recurrent layers).
    """

    def __init__(
        self,
        vocab_size: int,
        n_answers: int,
        *,
        fusion: str = "san",
        encoder: str = "small-cnn",
        encoder_kwargs: dict | None = None,
        question_encoder: str = "lstm",
        word_dim: int = 128,
        hidden: int = 256,
        question_layers: int = 1,
        text_heads: int = 4,
        text_max_len: int = 64,
        embed_dim: int = 256,
        attention_dim: int = 128,
        hops: int = 2,
        readout: str = "concat",
        classifier_hidden: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.fusion = check_choice(fusion, "fusion", FUSIONS)
        self.n_answers = check_positive_int(n_answers, "n_answers")
        d = self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.hops = check_positive_int(hops, "hops")
        self.readout = check_choice(readout, "readout", READOUTS)
        dropout = _check_dropout(dropout, "dropout")
        self.encoder = create_encoder(encoder, **(encoder_kwargs or {}))
        c = self.encoder.feature_info.channels
        self.question = QuestionEncoder(
            vocab_size, kind=question_encoder, word_dim=word_dim, hidden=hidden, dim=d,
            layers=question_layers, heads=text_heads, max_len=text_max_len, dropout=dropout,
        )  # fmt: skip
        if self.fusion == "san":
            self.image_proj = nn.Conv2d(c, d, kernel_size=1)  # W_I, per location
            attention_dim = check_positive_int(attention_dim, "attention_dim")
            self.attention = nn.ModuleList(
                AdditiveAttention(query_dim=d, feature_dim=d, hidden_dim=attention_dim)
                for _ in range(self.hops)
            )
            fused = d
            if self.readout == "concat":
                self.pooled_proj = nn.Linear(c, d)  # the product baseline's W_I
                fused = (4 * self.hops + 2) * d  # ... + (2 K) x D positions x question
        else:
            self.image_proj = nn.Linear(c, d)
            fused = 2 * d if self.fusion == "concat" else d
        h = check_positive_int(classifier_hidden, "classifier_hidden")
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(fused, h), nn.Tanh(),
            nn.Dropout(dropout), nn.Linear(h, self.n_answers),
        )  # fmt: skip

    def _image_index(self, image_index, n_images: int, n_questions: int) -> torch.Tensor | None:
        if image_index is None:
            if n_images != n_questions:
                raise ParameterError(
                    f"without image_index there must be one question per image. Found "
                    f"{n_images} images and {n_questions} questions"
                )
            return None
        idx = torch.as_tensor(image_index)
        if idx.shape != (n_questions,) or idx.is_floating_point() or idx.dtype == torch.bool:
            raise ParameterError(
                f"image_index must be an integer tensor of shape ({n_questions},). "
                f"Found {idx.dtype} {tuple(idx.shape)}"
            )
        if int(idx.min()) < 0 or int(idx.max()) >= n_images:
            raise ParameterError(
                f"image_index must lie in [0, {n_images}) (rows of images). "
                f"Found {int(idx.min())}..{int(idx.max())}"
            )
        return idx

    def forward(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> VQAOutput:
        """``images (B, 3, H, W)``, questions ``tokens (Q, L)`` / ``lengths (Q,)``,
        ``image_index (Q,)`` → :class:`VQAOutput` (logits ``(Q, A)``, attention
        ``(Q, hops, H', W')`` or None)."""
        features = self.encoder.forward_features(images)  # (B, C, H', W')
        q = self.question(tokens, lengths)  # (Q, D)
        idx = self._image_index(image_index, features.shape[0], q.shape[0])
        if idx is not None:
            idx = idx.to(features.device)
        attention = None
        if self.fusion == "san":
            v = torch.tanh(self.image_proj(features))  # (B, D, H', W')
            if idx is not None:
                v = v[idx]  # (Q, D, H', W')
            u, maps, contexts = q, [], []
            for attend in self.attention:
                context, alpha = attend(u, v)  # (Q, D), (Q, H', W')
                u = u + context
                maps.append(alpha)
                contexts.append(context)
            attention = torch.stack(maps, dim=1)  # (Q, hops, H', W')
            if self.readout == "sum":
                fused = u  # (Q, D)
            else:
                pooled = self._pooled(features, self.pooled_proj, idx)  # (Q, D)
                products = [q * c for c in contexts]
                where = (attended_positions(attention)[:, :, None] * q[:, None, :]).flatten(1)
                fused = torch.cat([q, *contexts, *products, q * pooled, where], dim=-1)
        else:
            v = self._pooled(features, self.image_proj, idx)  # (Q, D)
            fused = v * q if self.fusion == "product" else torch.cat([v, q], dim=-1)
        return VQAOutput(self.classifier(fused), attention)

    def _pooled(self, features: torch.Tensor, proj: nn.Linear, idx) -> torch.Tensor:
        """The pooled image vector ``tanh(W_I norm(pool(features)))``, one row per question."""
        pooled = self.encoder.forward_head(features)  # (B, C)
        # "norm I": L2-normalised, rescaled to unit RMS so tanh starts in its slope.
        pooled = F.normalize(pooled, dim=-1) * math.sqrt(pooled.shape[-1])
        v = torch.tanh(proj(pooled))  # (B, D)
        return v if idx is None else v[idx]

    @torch.no_grad()
    def answer(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        image_index: torch.Tensor | None = None,
        *,
        top_k: int = 5,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The ``top_k`` most probable answers: ``(probs (Q, k), ids (Q, k), attention)``,
        best first; ``k = min(top_k, n_answers)``."""
        k = min(check_positive_int(top_k, "top_k"), self.n_answers)
        out = self(images, tokens, lengths, image_index)
        probs, ids = out.logits.softmax(dim=-1).topk(k, dim=-1)
        return probs, ids, out.attention
