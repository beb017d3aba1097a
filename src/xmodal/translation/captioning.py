"""Image captioning: Show and Tell, and Show, Attend and Tell, with batched beam search.

Two decoders over one :class:`~xmodal.vision.ImageEncoder`:

- :class:`ShowTell` (Vinyals et al., 2015): the image's global vector, projected to the
  word-embedding size, is the LSTM's input at ``t = -1``; then ``<bos>``, the words...
- :class:`ShowAttendTell` (Xu et al., 2015): the LSTM's state starts from the mean
  feature; at every step soft additive attention over the ``(C, H', W')`` map, queried by
  the previous hidden state, gives a context that a scalar gate scales and that enters the
  LSTM beside the previous word.

Both take ``tokens`` as :meth:`~xmodal.text.Vocabulary.encode_batch` makes them,
``<bos> w1 ... wn <eos> <pad> ...`` ``(B, L)``, and predict ``tokens[:, 1:]`` with teacher
forcing (:class:`CaptionOutput`). :func:`caption_loss` is the cross-entropy over those
targets, up to and including the first ``<eos>``, plus Xu's doubly stochastic attention
regulariser. ``generate`` decodes by beam search, the whole batch and all its beams in one
tensor program per step; :func:`beam_search_loop` is the same search written one image at
a time, as the reference it is tested and timed against.

Example::

    >>> model = ShowAttendTell(len(vocab))
    >>> tokens, _ = vocab.encode_batch(captions)            # (B, L)
    >>> out = model(images, tokens)                           # logits (B, L-1, V)
    >>> loss, parts = caption_loss(out, tokens, alpha_c=model.alpha_c)
    >>> gen = model.generate(images, beam_size=3)             # tokens (B, T), alphas
    >>> vocab.decode_batch(gen.tokens, lengths=gen.lengths)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_bool, check_positive_int, check_positive_number
from xmodal.errors import ParameterError
from xmodal.text.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS
from xmodal.vision import AdditiveAttention, create_encoder
from xmodal.vision.encoders import stream_channels

__all__ = [
    "CaptionOutput",
    "Generation",
    "ShowAttendTell",
    "ShowTell",
    "beam_search_loop",
    "caption_loss",
    "target_mask",
]

_IGNORE = -100  # cross_entropy's ignore_index for targets outside the caption
_ATTENTION_CHUNK = 1 << 19  # elements of the attention's hidden buffer per chunk (2 MiB)


@dataclass
class CaptionOutput:
    """Teacher-forced predictions.

    ``logits``: ``(B, L-1, V)``, the scores of ``tokens[:, 1:]``;
    ``alphas``: ``(B, L-1, H', W')``, the attention used for each prediction (None for
    :class:`ShowTell`).
    """

    logits: torch.Tensor
    alphas: torch.Tensor | None = None


@dataclass
class Generation:
    """Beam-search captions, one per image.

    ``tokens``: ``(B, T)`` long, the words (no ``<bos>``, no ``<eos>``), padded with
    ``PAD_ID``; ``T`` is the longest caption of the batch. ``lengths``: ``(B,)`` words per
    caption. ``scores``: ``(B,)`` the returned beam's log-probability divided by
    ``n ** length_penalty``, ``n`` its number of tokens (words, plus the ``<eos>`` when it
    ended on one). ``alphas``: ``(B, T, H', W')``, the attention when emitting each word,
    zeros past the caption (None for :class:`ShowTell`).
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    scores: torch.Tensor
    alphas: torch.Tensor | None = None


# --------------------------------------------------------------------------- checks


def _check_dropout(value) -> float:
    value = check_positive_number(value, "dropout", allow_zero=True)
    if value >= 1:
        raise ParameterError(f"dropout must be in [0, 1). Found: {value}")
    return value


def _check_tokens(tokens, vocab_size: int, batch: int | None = None) -> torch.Tensor:
    """``tokens`` must be a ``(B, L)`` integer tensor, ``L >= 2``, ids in ``[0, V)``."""
    if not isinstance(tokens, torch.Tensor):
        raise ParameterError(f"tokens must be a LongTensor (B, L). Found: {type(tokens).__name__}")
    if tokens.dtype not in (torch.int64, torch.int32):
        raise ParameterError(f"tokens must be an integer tensor (B, L). Found: {tokens.dtype}")
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ParameterError(
            f"tokens must have shape (B, L) with L >= 2 (<bos> and at least one target). "
            f"Found shape {tuple(tokens.shape)}"
        )
    if batch is not None and tokens.shape[0] != batch:
        raise ParameterError(
            f"tokens must have one row per image ({batch}). Found shape {tuple(tokens.shape)}"
        )
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ParameterError(f"tokens must be ids in [0, {vocab_size}). Found: {bad}")
    return tokens.long()


def _check_search(model, beam_size, max_len, length_penalty) -> tuple[int, int, float]:
    beam_size = check_positive_int(beam_size, "beam_size")
    if beam_size > model.vocab_size - 2:
        raise ParameterError(
            f"beam_size must be <= {model.vocab_size - 2}, the tokens a caption can use "
            f"(vocab_size without <pad> and <bos>). Found: {beam_size}"
        )
    max_len = check_positive_int(max_len, "max_len")
    length_penalty = check_positive_number(length_penalty, "length_penalty", allow_zero=True)
    return beam_size, max_len, length_penalty


# --------------------------------------------------------------------------- loss


def target_mask(tokens: torch.Tensor) -> torch.Tensor:
    """Which targets ``tokens[:, 1:]`` count: ``(B, L-1)`` bool.

    A target counts if it is not ``<pad>`` and no ``<eos>`` comes before it, so the first
    ``<eos>`` is learnt (the model must learn to stop) and whatever follows it is ignored.
    """
    targets = tokens[:, 1:]
    eos = targets == EOS_ID
    after_eos = (eos.cumsum(dim=1) - eos.long()) > 0
    return (targets != PAD_ID) & ~after_eos


def caption_loss(
    output: CaptionOutput, tokens: torch.Tensor, *, alpha_c: float = 0.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of the captions plus ``alpha_c`` times the doubly stochastic term.

    ``xent`` is the mean over counted targets (:func:`target_mask`) of ``-log p(target)``.
    ``attention_reg`` is Xu et al.'s doubly stochastic term (eq. 14), ``(1 - sum_t
    alpha_ti)^2``, the sum over ``t`` running over counted steps only, averaged over the
    locations ``i`` and the items. It asks the decoder to look at every part of the image
    over the whole caption. The paper sums over locations; the mean (as most
    reimplementations compute it) keeps ``alpha_c`` independent of the map's size next to
    a cross-entropy that is a mean over words. It is 0 for outputs without attention.

    Returns ``(loss, {"xent": ..., "attention_reg": ...})``, the parts detached.

    >>> out = model(images, tokens)
    >>> loss, parts = caption_loss(out, tokens, alpha_c=model.alpha_c)
    """
    alpha_c = check_positive_number(alpha_c, "alpha_c", allow_zero=True)
    if not isinstance(output, CaptionOutput):
        raise ParameterError(f"output must be a CaptionOutput. Found: {type(output).__name__}")
    logits = output.logits
    b, steps, v = logits.shape
    tokens = _check_tokens(tokens, v, batch=b)
    if tokens.shape[1] - 1 != steps:
        raise ParameterError(
            f"tokens must have L = {steps + 1} columns to match logits {tuple(logits.shape)}. "
            f"Found shape {tuple(tokens.shape)}"
        )
    mask = target_mask(tokens)  # (B, L-1)
    if not bool(mask.any()):
        raise ParameterError("tokens hold no target to predict (every row is <bos> <pad>...)")
    targets = tokens[:, 1:].masked_fill(~mask, _IGNORE)
    xent = F.cross_entropy(logits.reshape(-1, v), targets.reshape(-1), ignore_index=_IGNORE)
    if output.alphas is None:
        if alpha_c > 0:
            raise ParameterError(
                f"alpha_c > 0 needs attention maps, and output.alphas is None. Found: {alpha_c}"
            )
        reg = xent.new_zeros(())
    else:
        alphas = output.alphas.flatten(2) * mask.unsqueeze(-1)  # (B, L-1, N)
        reg = ((1.0 - alphas.sum(dim=1)) ** 2).mean()
    loss = xent + alpha_c * reg if alpha_c > 0 else xent
    return loss, {"xent": xent.detach(), "attention_reg": reg.detach()}


# --------------------------------------------------------------------------- models


class _Captioner(nn.Module):
    """Shared pieces: encoder, embedding, input checks and ``generate``.

    A subclass implements the decoder as two functions that the beam searches drive:

    - ``_start(images) -> (memory, state)``: per-image tensors that stay fixed while
      decoding (``memory``, batch ``B`` first) and the LSTM state ``(h, c)`` after the image,
      before ``<bos>``, ``(B, hidden_dim)`` each;
    - ``_step(memory, state, words) -> (logits, alpha, state)``: one step for ``R = B * k``
      rows (rows ``i * k ... i * k + k - 1`` belong to image ``i``) fed ``words (R,)``:
      logits ``(R, V)``, attention ``(R, H', W')`` or None, the new state.
    """

    bos_id, eos_id, pad_id = BOS_ID, EOS_ID, PAD_ID
    alpha_c: float = 0.0

    def __init__(
        self,
        vocab_size: int,
        encoder: str,
        encoder_kwargs: dict | None,
        embed_dim: int,
        hidden_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size", minimum=len(SPECIALS) + 1)
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        self.dropout_p = _check_dropout(dropout)
        if encoder_kwargs is not None and not isinstance(encoder_kwargs, dict):
            raise ParameterError(
                f"encoder_kwargs must be a dict or None. Found: {type(encoder_kwargs).__name__}"
            )
        self.encoder = create_encoder(encoder, **(encoder_kwargs or {}))
        self.feature_dim = self.encoder.feature_info.channels
        self.embed = nn.Embedding(self.vocab_size, self.embed_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(self.dropout_p)

    def _start(self, images: torch.Tensor):
        raise NotImplementedError

    def _step(self, memory, state, words: torch.Tensor):
        raise NotImplementedError

    def _check_pair(self, images, tokens, captions_per_image: int = 1) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            found = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ParameterError(f"images must have shape (B, 3, H, W). Found: {found}")
        k = check_positive_int(captions_per_image, "captions_per_image")
        return _check_tokens(tokens, self.vocab_size, batch=images.shape[0] * k)

    @torch.no_grad()
    def generate(
        self,
        images: torch.Tensor,
        *,
        beam_size: int = 3,
        max_len: int = 20,
        length_penalty: float = 1.0,
    ) -> Generation:
        """Caption ``images (B, 3, H, W)`` by beam search; ``beam_size=1`` is greedy decoding.

        All ``B * beam_size`` hypotheses advance together, one tensor program per step; the
        encoder runs once. At each step every unfinished beam offers all ``V`` words and a
        finished one (it emitted ``<eos>``) offers itself with its score frozen; the best
        ``beam_size`` candidates by summed log-probability survive, ties going to the lower
        beam and then the lower word id. The search stops when every beam has finished or
        after ``max_len`` words; the beam returned maximises
        ``log p / n ** length_penalty`` (``n``: tokens, the ``<eos>`` included), ties going
        to the lower beam. Runs in eval mode (the mode is restored after) without gradients.

        >>> gen = model.generate(images, beam_size=3, max_len=16)
        >>> vocab.decode_batch(gen.tokens, lengths=gen.lengths)
        """
        beam_size, max_len, length_penalty = _check_search(self, beam_size, max_len, length_penalty)
        was_training = self.training
        self.eval()
        try:
            return _beam_search(self, images, beam_size, max_len, length_penalty)
        finally:
            self.train(was_training)


class ShowTell(_Captioner):
    """Show and Tell (Vinyals et al., 2015): the image as the LSTM's first input.

    The encoder's global vector ``(B, C)`` goes through ``Linear(C, embed_dim)`` and is fed
    at ``t = -1``; ``<bos>`` and the words follow, each as its embedding. Logits are
    ``Linear(dropout(h_t))``. Dropout also applies to the LSTM's inputs.

    Args:
        vocab_size: V, words including the 4 specials.
        encoder: a name for :func:`xmodal.vision.create_encoder`; ``encoder_kwargs`` its
            keyword arguments (e.g. ``{"channels": 64}``).
        embed_dim, hidden_dim: word embedding and LSTM sizes.
        dropout: probability in ``[0, 1)``.

    >>> model = ShowTell(len(vocab), encoder_kwargs={"channels": 64})
    >>> model(images, tokens).logits.shape          # (B, L-1, V)
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        encoder: str = "small-cnn",
        encoder_kwargs: dict | None = None,
        embed_dim: int = 128,
        hidden_dim: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(vocab_size, encoder, encoder_kwargs, embed_dim, hidden_dim, dropout)
        self.image_proj = nn.Linear(self.feature_dim, self.embed_dim)
        self.lstm = nn.LSTM(self.embed_dim, self.hidden_dim, batch_first=True)
        self.out = nn.Linear(self.hidden_dim, self.vocab_size)

    def _image_input(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.encoder.forward_features(images)  # (B, C, H', W')
        return self.image_proj(self.encoder.forward_head(feats))  # (B, E)

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, *, captions_per_image: int = 1
    ) -> CaptionOutput:
        """``images (B, 3, H, W)``, ``tokens (B * k, L)`` → logits ``(B * k, L-1, V)``.

        ``k = captions_per_image``: rows ``i * k ... i * k + k - 1`` of ``tokens`` caption
        image ``i``; the encoder runs once per image.
        """
        tokens = self._check_pair(images, tokens, captions_per_image)
        image = self._image_input(images).repeat_interleave(captions_per_image, 0)  # (B*k, E)
        x = torch.cat([image.unsqueeze(1), self.embed(tokens[:, :-1])], 1)
        h, _ = self.lstm(self.dropout(x))  # (B, L, H); position 0 saw only the image
        return CaptionOutput(logits=self.out(self.dropout(h[:, 1:])), alphas=None)

    def _start(self, images):
        x = self._image_input(images).unsqueeze(1)  # (B, 1, E)
        _, (h, c) = self.lstm(x)
        return (), (h[0], c[0])

    def _step(self, memory, state, words):
        h, c = state
        x = self.embed(words).unsqueeze(1)  # (R, 1, E)
        out, (h, c) = self.lstm(x, (h.unsqueeze(0), c.unsqueeze(0)))
        return self.out(out[:, 0]), None, (h[0], c[0])


class ShowAttendTell(_Captioner):
    """Show, Attend and Tell (Xu et al., 2015), soft attention.

    ``h_0, c_0 = tanh(Linear(mean_i f_i))``. At step ``t``, with ``y_{t-1}`` the previous
    word (``<bos>`` first) and ``f`` the encoder's map ``(B, C, H', W')``:

    - ``z_t, alpha_t = attention(h_{t-1}, f)``: :class:`~xmodal.vision.AdditiveAttention`
      with ``attention_dim`` hidden units; its projection of ``f`` is computed once per
      image, not once per step. With ``word_query`` the query also sees the previous
      word, ``W_h h_{t-1} + W_y E y_{t-1}``: the paper's ``h_{t-1}`` was computed before
      the search chose ``y_{t-1}``, so after "red" it may look at another object than
      the red one it was describing (on the world: a colour bound to the wrong shape);
    - with ``gate``: ``z_t = sigmoid(w_b . h_{t-1} + b) * z_t``, a scalar gate (eq. 12);
    - ``h_t, c_t = LSTMCell([E y_{t-1}; z_t], (h_{t-1}, c_{t-1}))``;
    - deep output (eq. 7, with the tanh of the authors' code):
      ``logits_t = L_o(dropout(tanh(E y_{t-1} + L_h h_t + L_z z_t)))``.

    ``alpha_c`` is the weight of the doubly stochastic regulariser the model is meant to
    be trained with (read by whoever calls :func:`caption_loss`).

    ``word_attributes`` (not in the paper) factors the words that name an attribute, e.g.
    ``{id("circles"): ("shape-plural", "shape", "circle")}`` (word id → its group, the
    attribute and the value it names): ``p(word) = p(group | deep output) *
    p(value | z_t)``, the first a softmax over the other words and the groups, the second
    a linear head per attribute on the attended context alone, over the values the
    group's words name. The language then says *that* a shape comes and the attended
    region *which* one: no word can be ruled out after another because the pair never
    occurred in training (the compositional split's held-out pairs). Its ``logits`` are
    then log-probabilities.

    >>> model = ShowAttendTell(len(vocab), encoder_kwargs={"channels": 64})
    >>> out = model(images, tokens)        # logits (B, L-1, V), alphas (B, L-1, 8, 8)
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        encoder: str = "small-cnn",
        encoder_kwargs: dict | None = None,
        embed_dim: int = 128,
        hidden_dim: int = 256,
        attention_dim: int = 128,
        dropout: float = 0.1,
        gate: bool = True,
        alpha_c: float = 1.0,
        word_query: bool = False,
        word_attributes: dict[int, tuple[str, str, str]] | None = None,
    ) -> None:
        super().__init__(vocab_size, encoder, encoder_kwargs, embed_dim, hidden_dim, dropout)
        self.attention_dim = check_positive_int(attention_dim, "attention_dim")
        self.alpha_c = check_positive_number(alpha_c, "alpha_c", allow_zero=True)
        c, e, h = self.feature_dim, self.embed_dim, self.hidden_dim
        self.init_h = nn.Linear(c, h)
        self.init_c = nn.Linear(c, h)
        self.attention = AdditiveAttention(h, c, self.attention_dim)
        self.gate = nn.Linear(h, 1) if check_bool(gate, "gate") else None
        word_query = check_bool(word_query, "word_query")
        self.word_query = nn.Linear(e, self.attention_dim, bias=False) if word_query else None
        self.cell = nn.LSTMCell(e + c, h)
        self.out_h = nn.Linear(h, e)  # L_h
        self.out_z = nn.Linear(c, e, bias=False)  # L_z
        self.out = nn.Linear(e, self.vocab_size)  # L_o
        self._factor(word_attributes or {})

    def _factor(self, word_attributes: dict[int, tuple[str, str, str]]) -> None:
        """The group logits, the attribute heads and, per group, its words and their
        values (buffers ``_group{g}_words``, ``_group{g}_values``)."""
        if any(not 0 <= i < self.vocab_size for i in word_attributes):
            raise ParameterError(
                f"word_attributes has word ids outside [0, {self.vocab_size}). "
                f"Found: {sorted(word_attributes)}"
            )
        info = word_attributes.values()
        attrs = sorted({a for _, a, _ in info})
        values = {a: sorted({v for _, b, v in info if b == a}) for a in attrs}
        # Each head reads its attribute's stream of a FactoredCNN (all channels otherwise).
        self.attribute_channels = {a: stream_channels(self.encoder, a) for a in attrs}
        self.attribute_heads = nn.ModuleDict(
            {
                a: nn.Linear(hi - lo, len(values[a]))
                for a, (lo, hi) in self.attribute_channels.items()
            }
        )
        self.groups = []  # (name, attribute) of each group, in logit order
        for g, name in enumerate(sorted({g for g, _, _ in info})):
            words = sorted(i for i, (h, _, _) in word_attributes.items() if h == name)
            attr = word_attributes[words[0]][1]
            if any(word_attributes[i][1] != attr for i in words):
                raise ParameterError(f"word_attributes: group {name!r} names several attributes")
            vals = [values[attr].index(word_attributes[i][2]) for i in words]
            self.register_buffer(f"_group{g}_words", torch.tensor(words), persistent=False)
            self.register_buffer(f"_group{g}_values", torch.tensor(vals), persistent=False)
            self.groups.append((name, attr))
        factored = sorted(word_attributes)
        self.register_buffer("_factored", torch.tensor(factored, dtype=torch.long),
                             persistent=False)  # fmt: skip
        self.group_out = nn.Linear(self.embed_dim, len(self.groups)) if self.groups else None

    def _start(self, images):
        feats = self.encoder.forward_features(images)  # (B, C, H', W')
        mean = self.encoder.forward_head(feats)  # (B, C)
        flat = feats.flatten(2).transpose(1, 2)  # (B, N, C)
        # 2 W_f f_i, once per image: see _attend for the factor 2.
        proj2 = 2.0 * self.attention.feature_proj(flat)  # (B, N, A)
        state = (torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))
        return (flat, proj2, feats.shape[-2:]), state

    def _attend(self, memory, h: torch.Tensor, emb: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """``h (R, H)`` with ``R = B * k`` (and, with ``word_query``, the previous word's
        embedding ``emb (R, E)``) → context ``(R, C)``, alpha ``(R, N)``.

        The same attention as ``self.attention(h, f)``, computed faster: the ``k`` rows of an
        image broadcast against its one copy of the features, ``W_f f`` comes precomputed,
        and the ``tanh`` over ``(R, N, A)`` (the costliest op of a step) is replaced by a
        sigmoid, about 3x faster on a CPU: ``w . tanh(u) = 2 w . sigmoid(2u) - sum(w)``, and
        softmax ignores the constant ``sum(w)``, so ``alpha`` is unchanged.
        """
        flat, proj2, _ = memory
        b, n, c = flat.shape
        k = h.shape[0] // b
        query = self.attention.query_proj(h)
        if self.word_query is not None:
            query = query + self.word_query(emb)
        q2 = 2.0 * query.view(b, k, 1, -1)  # (B, k, 1, A)
        # A few images at a time, so that the (images, k, N, A) buffer stays in cache from
        # the add through the sigmoid to the projection (1.5x faster for a batch of beams).
        chunk = max(1, _ATTENTION_CHUNK // (k * n * proj2.shape[-1]))
        scores = []
        for i in range(0, b, chunk):
            x = (proj2[i : i + chunk].unsqueeze(1) + q2[i : i + chunk]).sigmoid_()  # in place
            scores.append(self.attention.score_proj(x).squeeze(-1))  # (chunk, k, N)
        e = 2.0 * (torch.cat(scores) if len(scores) > 1 else scores[0])  # up to a constant
        alpha = torch.softmax(e, dim=-1)
        context = torch.bmm(alpha, flat)  # (B, k, C)
        return context.view(b * k, c), alpha.view(b * k, n)

    def _advance(self, memory, state, emb):
        """One LSTM step from ``state`` with the previous word's embedding ``emb (R, E)``."""
        h, c = state
        context, alpha = self._attend(memory, h, emb)
        if self.gate is not None:
            context = torch.sigmoid(self.gate(h)) * context  # (R, 1) * (R, C)
        h, c = self.cell(torch.cat([emb, context], dim=1), (h, c))
        return context, alpha, (h, c)

    def _logits(self, emb, h, context):
        hidden = self.dropout(torch.tanh(emb + self.out_h(h) + self.out_z(context)))
        logits = self.out(hidden)
        if self.group_out is None:
            return logits
        # log p(word) for the other words and log p(group), one softmax; then per group
        # log p(group) + log p(value | z) over the values its words name.
        v = self.vocab_size
        top = torch.cat([logits.index_fill(-1, self._factored, float("-inf")),
                         self.group_out(hidden)], -1).log_softmax(-1)  # fmt: skip
        heads = {}
        for a, head in self.attribute_heads.items():
            lo, hi = self.attribute_channels[a]
            heads[a] = head(context[..., lo:hi])
        out = top[..., :v]
        for g, (_, attr) in enumerate(self.groups):
            values = heads[attr].index_select(-1, getattr(self, f"_group{g}_values"))
            logp = values.log_softmax(-1) + top[..., v + g : v + g + 1]
            out = out.index_copy(-1, getattr(self, f"_group{g}_words"), logp)
        return out

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, *, captions_per_image: int = 1
    ) -> CaptionOutput:
        """``images (B, 3, H, W)``, ``tokens (B * k, L)`` → logits ``(B * k, L-1, V)``, alphas
        ``(B * k, L-1, H', W')`` (teacher forcing).

        ``k = captions_per_image``: rows ``i * k ... i * k + k - 1`` of ``tokens`` caption
        image ``i``; the encoder and the attention's feature projection run once per image.
        """
        tokens = self._check_pair(images, tokens, captions_per_image)
        memory, state = self._start(images)
        state = tuple(s.repeat_interleave(captions_per_image, 0) for s in state)
        emb = self.embed(tokens[:, :-1])  # (B*k, T, E), T = L-1
        contexts, alphas, hs = [], [], []
        for t in range(emb.shape[1]):
            context, alpha, state = self._advance(memory, state, emb[:, t])
            contexts.append(context)
            alphas.append(alpha)
            hs.append(state[0])
        # The deep output has no recurrence: one matmul over all steps.
        logits = self._logits(emb, torch.stack(hs, 1), torch.stack(contexts, 1))  # (B, T, V)
        b, t = emb.shape[:2]
        return CaptionOutput(logits=logits, alphas=torch.stack(alphas, 1).view(b, t, *memory[2]))

    def _step(self, memory, state, words):
        emb = self.embed(words)  # (R, E)
        context, alpha, state = self._advance(memory, state, emb)
        logits = self._logits(emb, state[0], context)
        return logits, alpha.view(-1, *memory[2]), state


# --------------------------------------------------------------------------- beam search


def _normalised(scores: torch.Tensor, n_tokens: torch.Tensor, lp: float, max_len: int):
    """``scores / n_tokens ** lp`` in float64.

    The powers come from one table of ``max_len + 2`` entries, so the batched search and the
    per-image loop divide by bit-identical numbers whatever their shapes.
    """
    table = torch.arange(max_len + 2, dtype=torch.float64, device=scores.device) ** lp
    return scores.double() / table[n_tokens.clamp(min=1)]


def _score_dtype(dtype: torch.dtype) -> torch.dtype:
    """Scores are summed in the model's precision, at least float32."""
    return dtype if dtype == torch.float64 else torch.float32


def _log_probs(logits: torch.Tensor, model) -> torch.Tensor:
    """Log-probabilities ``(R, V)`` of the next token; ``<pad>`` and ``<bos>`` are never
    emitted (probability 0, the others renormalised)."""
    logits = logits.to(_score_dtype(logits.dtype), copy=True)
    logits[:, [model.pad_id, model.bos_id]] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


def _select(memory, keep: torch.Tensor):
    """The items ``keep`` (bool, one per image) of every tensor in ``memory``."""
    return tuple(m[keep] if isinstance(m, torch.Tensor) else m for m in memory)


def _beam_search(model, images, k: int, max_len: int, lp: float) -> Generation:
    """Batched beam search (see ``_Captioner.generate``).

    Bookkeeping (scores, finished flags, back-pointers) is kept for all ``B`` images, but
    the decoder only runs for the *active* ones: an image whose beams have all finished
    leaves the batch. The first step runs one beam per image (they all start from
    ``<bos>``); later steps ``k``.
    """
    memory, state = model._start(images)
    b = state[0].shape[0]
    v = model.vocab_size
    device = state[0].device
    dtype = _score_dtype(state[0].dtype)
    scores = torch.zeros(b, k, dtype=dtype, device=device)
    finished = torch.zeros(b, k, dtype=torch.bool, device=device)
    n_words = torch.zeros(b, k, dtype=torch.long, device=device)
    words = torch.full((b,), model.bos_id, dtype=torch.long, device=device)
    # A finished beam's only continuation: itself, with log-prob 0 (its score frozen).
    stay = torch.full((v,), float("-inf"), dtype=dtype, device=device)
    stay[model.pad_id] = 0.0
    active = torch.arange(b, device=device)  # images still searching
    same_beam = torch.arange(k, device=device).expand(b, k)
    history = []  # per step, (B, k) each: parent beam, word (or pad), its attention map
    for t in range(max_len):
        kc = 1 if t == 0 else k  # beams per image in this step's rows
        a = len(active)
        logits, alpha, state = model._step(memory, state, words)  # rows (a * kc)
        logp = _log_probs(logits, model).view(a, kc, v)
        done_before = finished[active, :kc]
        logp = torch.where(done_before.unsqueeze(-1), stay, logp)
        candidates = (scores[active, :kc].unsqueeze(-1) + logp).view(a, kc * v)
        # A stable sort, not topk: ties go to the lower (beam, word), deterministically.
        top, index = candidates.sort(dim=1, descending=True, stable=True)
        top, index = top[:, :k], index[:, :k]
        parent, word = index // v, index % v
        is_word = ~done_before.gather(1, parent) & (word != model.eos_id)
        word = word.masked_fill(~is_word, model.pad_id)
        scores[active] = top
        finished[active] = ~is_word  # it was finished already, or it just emitted <eos>
        n_words[active] = n_words[active].gather(1, parent) + is_word.long()
        # Inactive images keep their beams as they are.
        step_parent, step_word = same_beam.clone(), torch.full_like(same_beam, model.pad_id)
        step_parent[active], step_word[active] = parent, word
        step_alpha = None
        if alpha is not None:
            chosen = alpha.view(a, kc, -1).gather(
                1, parent.unsqueeze(-1).expand(-1, -1, alpha[0].numel())
            )
            step_alpha = alpha.new_zeros(b, k, *alpha.shape[1:])
            step_alpha[active] = (chosen * is_word.unsqueeze(-1)).view(a, k, *alpha.shape[1:])
        history.append((step_parent, step_word, step_alpha))
        rows = ((torch.arange(a, device=device) * kc).unsqueeze(1) + parent).view(-1)
        state = tuple(s.index_select(0, rows) for s in state)  # (a * k, H)
        words = word.view(-1)
        done = finished[active].all(dim=1)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = ~done
            active, memory = active[keep], _select(memory, keep)
            rows = keep.repeat_interleave(k)
            state, words = tuple(s[rows] for s in state), words[rows]
    n_tokens = n_words + finished.long()  # an <eos> counts as a token
    normalised = _normalised(scores, n_tokens, lp, max_len)
    best = normalised.argmax(dim=1)  # (B,): the first maximum
    items = torch.arange(b, device=device)
    lengths = n_words[items, best]
    width = int(lengths.max())
    tokens = torch.full((b, width), model.pad_id, dtype=torch.long, device=device)
    step_alpha = history[0][2]
    alphas = None
    if step_alpha is not None:
        alphas = step_alpha.new_zeros(b, width, *step_alpha.shape[2:])
    # Back-pointers: walk each chosen beam from the last step to the first.
    beam = best
    for t in range(len(history) - 1, -1, -1):
        step_parent, step_word, step_alpha = history[t]
        if t < width:
            tokens[:, t] = step_word[items, beam]
            if alphas is not None:
                alphas[:, t] = step_alpha[items, beam]
        beam = step_parent[items, beam]
    return Generation(
        tokens=tokens, lengths=lengths, scores=normalised[items, best].to(dtype), alphas=alphas
    )


@dataclass
class _Beam:
    score: float  # a value of the score dtype (float32 or float64), kept exactly
    words: list[int]
    alphas: list[torch.Tensor]
    state: tuple[torch.Tensor, ...] | None  # None once finished
    finished: bool


@torch.no_grad()
def beam_search_loop(
    model: _Captioner,
    images: torch.Tensor,
    *,
    beam_size: int = 3,
    max_len: int = 20,
    length_penalty: float = 1.0,
) -> Generation:
    """The beam search of ``model.generate``, written plainly: one image at a time.

    Each image is encoded alone; each step runs the decoder on that image's unfinished
    beams, lists every candidate ``(score, beam, word)`` in Python, sorts it and keeps the
    best ``beam_size``. Same rules, ties and result as ``generate``; it exists as the
    reference that the batched search is tested and benchmarked against.
    """
    k, max_len, lp = _check_search(model, beam_size, max_len, length_penalty)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        found = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
        raise ParameterError(f"images must have shape (B, 3, H, W). Found: {found}")
    was_training = model.training
    model.eval()
    try:
        chosen = [_search_one(model, images[i : i + 1], k, max_len, lp) for i in range(len(images))]
    finally:
        model.train(was_training)
    b, device = len(chosen), images.device
    lengths = [len(beam.words) for beam, _, _ in chosen]
    width = max(lengths)
    tokens = torch.full((b, width), model.pad_id, dtype=torch.long, device=device)
    spatial, alpha_dtype = chosen[0][2]
    alphas = None
    if spatial is not None:
        alphas = torch.zeros(b, width, *spatial, dtype=alpha_dtype, device=device)
    for i, (beam, _, _) in enumerate(chosen):
        tokens[i, : lengths[i]] = torch.tensor(beam.words, dtype=torch.long)
        if alphas is not None and beam.alphas:
            alphas[i, : lengths[i]] = torch.stack(beam.alphas)
    return Generation(
        tokens=tokens,
        lengths=torch.tensor(lengths, dtype=torch.long, device=device),
        scores=torch.stack([score for _, score, _ in chosen]).to(device),
        alphas=alphas,
    )


def _search_one(model, image, k: int, max_len: int, lp: float):
    """Beam search for one image ``(1, 3, H, W)`` → (chosen beam, its normalised score, the
    attention maps' ``(H', W')`` or None)."""
    memory, state = model._start(image)
    spatial = alpha_dtype = None
    beams = [_Beam(0.0, [], [], tuple(s[0] for s in state), False)]
    for _ in range(max_len):
        alive = [j for j, beam in enumerate(beams) if not beam.finished]
        if not alive:
            break
        row_of = {j: r for r, j in enumerate(alive)}
        state = tuple(
            torch.stack(parts) for parts in zip(*(beams[j].state for j in alive), strict=True)
        )
        last = [beams[j].words[-1] if beams[j].words else model.bos_id for j in alive]
        logits, alpha, state = model._step(memory, state, torch.tensor(last, device=image.device))
        if alpha is not None:
            spatial, alpha_dtype = tuple(alpha.shape[1:]), alpha.dtype
        logp = _log_probs(logits, model)
        dtype = logp.dtype
        alive_scores = torch.tensor(
            [beams[j].score for j in alive], dtype=dtype, device=logp.device
        )
        totals = (alive_scores.unsqueeze(1) + logp).tolist()  # sums in the score dtype, as batched
        candidates = []
        for j, beam in enumerate(beams):
            if beam.finished:
                candidates.append((beam.score, j, model.pad_id))
            else:
                candidates.extend((s, j, w) for w, s in enumerate(totals[row_of[j]]))
        candidates.sort(key=lambda cand: (-cand[0], cand[1], cand[2]))
        new = []
        for score, j, w in candidates[:k]:
            beam = beams[j]
            if beam.finished:
                new.append(beam)
            elif w == model.eos_id:
                new.append(_Beam(score, beam.words, beam.alphas, None, True))
            else:
                r = row_of[j]
                a = [] if alpha is None else [alpha[r]]
                s = tuple(part[r] for part in state)
                new.append(_Beam(score, beam.words + [w], beam.alphas + a, s, False))
        beams = new
    scores = torch.tensor([beam.score for beam in beams], dtype=dtype)
    n_tokens = torch.tensor([len(beam.words) + beam.finished for beam in beams])
    normalised = _normalised(scores, n_tokens, lp, max_len)
    best = int(normalised.argmax())
    return beams[best], normalised[best].to(dtype), (spatial, alpha_dtype)
