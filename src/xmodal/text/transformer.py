"""The transformer, from scaled dot-product attention up to GPT, readable top to bottom.

Pieces, in the order a forward pass meets them:

- :func:`scaled_dot_product_attention`: ``softmax(q k^T / sqrt(d)) v`` on
  :func:`torch.nn.functional.scaled_dot_product_attention` (the fused kernel), with an
  explicit softmax path that also returns the attention weights when they are asked for.
- :class:`MultiHeadAttention`: separate query, key and value projections, ``n_head``
  heads, an output projection; causal masking, a key padding mask and a key/value cache
  for incremental decoding. Same weights, same numbers as :class:`torch.nn.MultiheadAttention`.
- Position embeddings: :class:`LearnedPositionEmbedding` (GPT) and
  :class:`SinusoidalPositionEmbedding` (Vaswani et al. 2017, :func:`sinusoidal_position_embedding`).
- :class:`Block`: attention and an MLP, each with a residual connection and a layer norm.
- :class:`Transformer`: token + position embeddings and a stack of ``n_layer`` blocks.
- :class:`GPT`: the causal language model; the LM head shares the token embedding's
  weights; :meth:`GPT.generate` samples with temperature and top-k, with a KV cache;
  :meth:`GPT.attention_maps` returns every layer's attention weights for plotting.

Layer norm placement (``norm``): ``"pre"`` (the default) normalizes the input of each
sub-layer, ``x + f(ln(x))``, and adds a final layer norm, as GPT-2 and later; ``"post"``
normalizes after the residual sum, ``ln(x + f(x))``, as the original transformer and GPT-1
(the ``gpt1`` preset). Pre-LN is the default because it trains stably at a higher learning
rate with a short warm-up, which matters for the few-minute CPU runs this library is for;
post-LN is one setting away for a faithful GPT-1.

Shapes: ``B`` batch, ``T`` query length, ``S`` key length (``T`` plus the cached past),
``C`` width (``n_embd``), ``H`` heads, ``D = C / H`` head width, ``V`` vocabulary.

Example::

    config = TransformerConfig.preset("tiny", vocab_size=65)
    model = GPT(config)
    logits, loss = model(idx, targets)                  # (B, T, V), scalar
    out = model.generate(idx[:, :1], 100, temperature=0.8, top_k=10)   # (B, 101)
    maps = model.attention_maps(idx)                    # n_layer x (B, H, T, T)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_bool, check_choice, check_positive_int, check_positive_number
from xmodal.errors import ParameterError

__all__ = [
    "GPT",
    "PRESETS",
    "Block",
    "LearnedPositionEmbedding",
    "MLP",
    "MultiHeadAttention",
    "SinusoidalPositionEmbedding",
    "Transformer",
    "TransformerConfig",
    "TransformerOutput",
    "check_transformer_fields",
    "scaled_dot_product_attention",
    "sinusoidal_position_embedding",
]

POSITIONS = ("learned", "sinusoidal")
NORMS = ("pre", "post")

KVCache = tuple[torch.Tensor, torch.Tensor]  # (B, H, S, D) keys and values of one layer


# ----------------------------------------------------------------------------- config


def check_transformer_fields(
    *, block_size, n_layer, n_head, n_embd, dropout, position, norm, bias, prefix: str = ""
) -> None:
    """Raise ParameterError for a field a transformer cannot be built with.

    ``prefix`` is put before each name in the message (a task's config passes ``"model."``).
    """
    for name, value in (("block_size", block_size), ("n_layer", n_layer),
                        ("n_head", n_head), ("n_embd", n_embd)):  # fmt: skip
        check_positive_int(value, prefix + name)
    if n_embd % n_head:
        raise ParameterError(
            f"{prefix}n_embd must be divisible by {prefix}n_head (each head gets "
            f"n_embd / n_head channels). Found: n_embd={n_embd}, n_head={n_head}"
        )
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, numbers.Real)
        or not 0.0 <= dropout < 1.0
    ):
        raise ParameterError(f"{prefix}dropout must be in [0, 1). Found: {dropout!r}")
    check_choice(position, prefix + "position", POSITIONS)
    check_choice(norm, prefix + "norm", NORMS)
    check_bool(bias, prefix + "bias")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and choices of a :class:`Transformer` / :class:`GPT`.

    ``block_size`` is the context length (the longest sequence, in tokens); ``n_embd``
    must be divisible by ``n_head``. :meth:`preset` gives named sizes (:data:`PRESETS`).
    """

    vocab_size: int
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.1
    position: str = "learned"  # "learned" (GPT) or "sinusoidal" (Vaswani et al.)
    norm: str = "pre"  # "pre" (GPT-2 style, the default) or "post" (GPT-1)
    bias: bool = True

    def __post_init__(self) -> None:
        check_positive_int(self.vocab_size, "vocab_size")
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.pop("vocab_size")
        check_transformer_fields(**fields)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def preset(cls, name: str, **overrides) -> TransformerConfig:
        """A named size from :data:`PRESETS`, with any field overridden.

        >>> TransformerConfig.preset("gpt1").n_layer
        12
        >>> TransformerConfig.preset("tiny", vocab_size=65).n_embd
        128
        """
        check_choice(name, "preset", tuple(PRESETS))
        fields = {**PRESETS[name], **overrides}
        if "vocab_size" not in fields:
            raise ParameterError(f"preset {name!r} needs vocab_size (it has no default)")
        return cls(**fields)


# GPT-1 (Radford et al. 2018): 12 layers, 768 wide, 12 heads, 512 tokens, learned positions,
# post-LN, 40,478 BPE tokens. The others are for a CPU: "small" is nanoGPT's
# shakespeare-char model, "tiny" the default of `xmodal train gpt`, "micro" for tests.
PRESETS: dict[str, dict] = {
    "gpt1": dict(vocab_size=40478, block_size=512, n_layer=12, n_head=12, n_embd=768,
                 dropout=0.1, position="learned", norm="post"),
    "small": dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
    "tiny": dict(block_size=128, n_layer=4, n_head=4, n_embd=128, dropout=0.1),
    "micro": dict(block_size=64, n_layer=2, n_head=2, n_embd=32, dropout=0.0),
}  # fmt: skip


# ----------------------------------------------------------------------------- attention


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``softmax(q k^T / sqrt(D) + mask) v`` and, with ``need_weights``, the softmax.

    Args:
        q: ``(..., T, D)`` queries; k, v: ``(..., S, D)`` keys and values.
        attn_mask: as in :func:`torch.nn.functional.scaled_dot_product_attention`: a bool
            mask broadcastable to ``(..., T, S)``, True where a query *may* attend, or a
            float mask added to the scores.
        is_causal: query ``i`` sees keys ``j <= i`` (top-left aligned, as torch's).
        dropout_p: dropout on the attention weights (pass 0.0 in eval mode).
        need_weights: also return the weights ``(..., T, S)`` (before dropout). The fused
            kernel cannot return them, so this takes the explicit path.

    Returns:
        ``(out, weights)``: ``out`` is ``(..., T, D)``; ``weights`` is None unless asked for.
    """
    if not need_weights:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal
        )
        return out, None
    T, S = q.size(-2), k.size(-2)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (..., T, S)
    if is_causal:
        allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = scores.softmax(dim=-1)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query, key and value projections.

    ``forward(query, key=None, value=None)`` is self-attention when ``key`` and ``value``
    are left out. Masks follow :class:`torch.nn.MultiheadAttention` (``batch_first``):
    ``key_padding_mask`` ``(B, S)`` and a bool ``attn_mask`` ``(T, S)`` are True where a
    key must be *ignored*; a float ``attn_mask`` is added to the scores. With the same
    weights (``in_proj_weight`` split into ``q_proj``, ``k_proj``, ``v_proj``) both give the
    same output and weights.

    Example::

        mha = MultiHeadAttention(64, 4)
        y, w, cache = mha(x, causal=True, need_weights=True)    # (B, T, 64), (B, 4, T, T)
        y1, _, cache = mha(x_next, causal=True, past_key_value=cache, use_cache=True)
    """

    def __init__(self, embed_dim: int, num_heads: int, *, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ParameterError(
                f"embed_dim must be divisible by num_heads. Found: embed_dim={embed_dim}, "
                f"num_heads={num_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1). Found: {dropout!r}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = float(dropout)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, L, D)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        *,
        causal: bool = False,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        past_key_value: KVCache | None = None,
        use_cache: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, KVCache | None]:
        """Attend from ``query`` ``(B, T, C)`` to ``key``/``value`` ``(B, S', C)``.

        ``past_key_value``: the ``(keys, values)`` ``(B, H, P, D)`` of earlier positions
        (from a call with ``use_cache=True``); the new ones are appended, so the keys are
        ``S = P + S'`` long and ``key_padding_mask`` / ``attn_mask`` cover all ``S``.
        With ``causal``, query ``i`` sits at position ``P + i`` and sees keys ``<= P + i``.

        Returns ``(out (B, T, C), weights (B, H, T, S) or None, (keys, values) or None)``.
        """
        key = query if key is None else key
        value = key if value is None else value
        q = self._heads(self.q_proj(query))  # (B, H, T, D)
        k = self._heads(self.k_proj(key))  # (B, H, S', D)
        v = self._heads(self.v_proj(value))
        if past_key_value is not None:
            k = torch.cat([past_key_value[0], k], dim=2)  # (B, H, S, D)
            v = torch.cat([past_key_value[1], v], dim=2)
        present = (k, v) if use_cache else None
        B, _, T, _ = q.shape
        S = k.size(2)

        # The fused kernel's own causal mask serves the plain case; anything else becomes
        # one bool mask, True where a query may attend (the sdpa convention).
        is_causal = causal and S == T and attn_mask is None and key_padding_mask is None
        allowed = None
        if causal and not is_causal and T > 1:  # a single new query sees every key
            rows = torch.arange(S - T, S, device=q.device)[:, None]  # query i at S - T + i
            allowed = torch.arange(S, device=q.device)[None, :] <= rows  # (T, S)
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            allowed = ~attn_mask if allowed is None else allowed & ~attn_mask
        if key_padding_mask is not None:
            keep = ~key_padding_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
            allowed = keep if allowed is None else allowed & keep  # (B, 1, T, S)
        dead = None
        if allowed is not None:
            # A query that may see no key at all (e.g. a padding position under left
            # padding) would get NaN: let it see every key, then zero its output.
            dead = ~allowed.any(dim=-1, keepdim=True)  # (..., T, 1)
            if bool(dead.any()):
                allowed = allowed | dead
            else:
                dead = None
        mask = allowed
        if attn_mask is not None and attn_mask.dtype != torch.bool:  # additive scores
            mask = attn_mask if allowed is None else attn_mask.masked_fill(~allowed, float("-inf"))
        dropout_p = self.dropout if self.training else 0.0
        y, weights = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout_p,
            need_weights=need_weights,
        )  # fmt: skip
        if dead is not None:
            y = y.masked_fill(dead, 0.0)
            if weights is not None:
                weights = weights.masked_fill(dead, 0.0)
        y = y.transpose(1, 2).reshape(B, T, self.embed_dim)  # (B, T, C)
        return self.out_proj(y), weights, present


# ----------------------------------------------------------------------------- positions


def sinusoidal_position_embedding(n_positions: int, dim: int) -> torch.Tensor:
    """The fixed position code of Vaswani et al. (2017), ``(n_positions, dim)`` float32.

    ``PE[p, 2i] = sin(p / 10000^(2i/dim))`` and ``PE[p, 2i+1] = cos(p / 10000^(2i/dim))``.
    """
    n_positions = check_positive_int(n_positions, "n_positions")
    dim = check_positive_int(dim, "dim")
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (ceil(dim/2),)
    angle = position * inv_freq  # (P, ceil(dim/2))
    pe = torch.zeros(n_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = angle.sin()
    pe[:, 1::2] = angle.cos()[:, : dim // 2]
    return pe.float()


class LearnedPositionEmbedding(nn.Module):
    """One trained vector per position (GPT): ``forward(T, offset)`` gives ``(T, C)``."""

    def __init__(self, block_size: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(block_size, dim))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        return self.weight[offset : offset + length]


class SinusoidalPositionEmbedding(nn.Module):
    """The fixed sinusoids of :func:`sinusoidal_position_embedding`; nothing to train.

    The table is a non-persistent buffer: it is rebuilt, not stored in the weights.
    """

    def __init__(self, block_size: int, dim: int):
        super().__init__()
        self.register_buffer("table", sinusoidal_position_embedding(block_size, dim),
                             persistent=False)  # fmt: skip

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        return self.table[offset : offset + length]


# ----------------------------------------------------------------------------- blocks


class MLP(nn.Module):
    """Position-wise feed-forward: ``Linear(C, 4C)``, GELU, ``Linear(4C, C)``, dropout."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Multi-head self-attention and an MLP, each with a residual and a layer norm.

    ``norm="pre"``: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; ``norm="post"``:
    ``ln_1(x + attn(x))`` then ``ln_2(x + mlp(x))`` (GPT-1).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.pre_norm = config.norm == "pre"
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, dropout=config.dropout,
                                       bias=config.bias)  # fmt: skip
        self.drop = nn.Dropout(config.dropout)  # on the attention's residual branch
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        *,
        causal: bool = True,
        key_padding_mask: torch.Tensor | None = None,
        past_key_value: KVCache | None = None,
        use_cache: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, KVCache | None]:
        """``x`` ``(B, T, C)`` -> ``(x (B, T, C), weights (B, H, T, S) or None, cache)``."""
        kw = dict(causal=causal, key_padding_mask=key_padding_mask,
                  past_key_value=past_key_value, use_cache=use_cache,
                  need_weights=need_weights)  # fmt: skip
        if self.pre_norm:
            a, weights, present = self.attn(self.ln_1(x), **kw)
            x = x + self.drop(a)
            x = x + self.mlp(self.ln_2(x))
        else:
            a, weights, present = self.attn(x, **kw)
            x = self.ln_1(x + self.drop(a))
            x = self.ln_2(x + self.mlp(x))
        return x, weights, present


class TransformerOutput(NamedTuple):
    """What :meth:`Transformer.forward` returns."""

    hidden: torch.Tensor  # (B, T, C), after the final layer norm (pre-LN)
    past_key_values: list[KVCache] | None  # per layer, with use_cache
    attentions: list[torch.Tensor] | None  # per layer (B, H, T, S), with need_weights


def _check_idx(idx, vocab_size: int, name: str = "idx") -> torch.Tensor:
    if not isinstance(idx, torch.Tensor):
        raise ParameterError(
            f"{name} must be a torch.Tensor of token ids. Found: {type(idx).__name__}"
        )
    if idx.ndim != 2 or idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ParameterError(
            f"{name} must be a 2-D integer tensor (B, T) of token ids. "
            f"Found: {idx.dtype} {tuple(idx.shape)}"
        )
    if idx.size(1) == 0:
        raise ParameterError(
            f"{name} must hold at least one token per row. Found shape {tuple(idx.shape)}"
        )
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ParameterError(f"{name} holds token id {bad}, outside [0, vocab_size={vocab_size})")
    return idx


class Transformer(nn.Module):
    """Token and position embeddings, then ``n_layer`` :class:`Block` s: ``(B, T) -> (B, T, C)``.

    Sinusoidal positions come with token embeddings scaled by ``sqrt(C)``, as in Vaswani
    et al. (the fixed code has unit amplitude; learned ones start as small as the tokens).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise ParameterError(f"config must be a TransformerConfig. Found: {config!r:.80}")
        self.config = config
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)
        if config.position == "learned":
            self.wpe = LearnedPositionEmbedding(config.block_size, C)
            self.embed_scale = 1.0
        else:
            self.wpe = SinusoidalPositionEmbedding(config.block_size, C)
            self.embed_scale = math.sqrt(C)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C, bias=config.bias) if config.norm == "pre" else nn.Identity()

    def forward(
        self,
        idx: torch.Tensor,
        *,
        causal: bool = True,
        key_padding_mask: torch.Tensor | None = None,
        past_key_values: list[KVCache] | None = None,
        use_cache: bool = False,
        need_weights: bool = False,
    ) -> TransformerOutput:
        """Hidden states of ``idx`` ``(B, T)``.

        ``key_padding_mask`` ``(B, S)``: True at padding keys. ``past_key_values``: the
        cache of the ``P`` tokens before ``idx`` (their positions are ``0..P-1``, these
        ``P..P+T-1``); ``P + T`` must not exceed ``block_size``.
        """
        idx = _check_idx(idx, self.config.vocab_size)
        B, T = idx.shape
        past = 0 if not past_key_values else past_key_values[0][0].size(2)
        if past + T > self.config.block_size:
            where = f" ({past} cached + {T} new)" if past else ""
            raise ParameterError(
                f"a sequence of {past + T} tokens{where} is longer than the context length "
                f"block_size={self.config.block_size}"
            )
        if past_key_values is not None and len(past_key_values) != len(self.blocks):
            raise ParameterError(
                f"past_key_values must hold one (keys, values) per layer ({len(self.blocks)}). "
                f"Found: {len(past_key_values)}"
            )
        if key_padding_mask is not None and tuple(key_padding_mask.shape) != (B, past + T):
            raise ParameterError(
                f"key_padding_mask must have shape (B, S) = {(B, past + T)}. "
                f"Found: {tuple(key_padding_mask.shape)}"
            )
        x = self.wte(idx) * self.embed_scale + self.wpe(T, past)  # (B, T, C)
        x = self.drop(x)
        presents = [] if use_cache else None
        attentions = [] if need_weights else None
        for i, block in enumerate(self.blocks):
            x, weights, present = block(
                x, causal=causal, key_padding_mask=key_padding_mask,
                past_key_value=past_key_values[i] if past_key_values else None,
                use_cache=use_cache, need_weights=need_weights,
            )  # fmt: skip
            if use_cache:
                presents.append(present)
            if need_weights:
                attentions.append(weights)
        return TransformerOutput(self.ln_f(x), presents, attentions)


# ----------------------------------------------------------------------------- GPT


def _init_weights(module: nn.Module) -> None:
    # GPT-1: "a simple weight initialization of N(0, 0.02) was sufficient".
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


class GPT(nn.Module):
    """A causal transformer language model whose output layer is the token embedding.

    ``forward(idx, targets)`` gives next-token logits ``(B, T, V)`` and, with
    ``targets`` ``(B, T)`` (``-100`` ignored), the mean cross-entropy.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(_init_weights)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf 2017)

    def num_parameters(self) -> int:
        """Trained parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden = self.transformer(idx).hidden  # (B, T, C)
        logits = self.lm_head(hidden)  # (B, T, V)
        loss = None
        if targets is not None:
            if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != tuple(idx.shape):
                found = tuple(targets.shape) if isinstance(targets, torch.Tensor) else targets
                raise ParameterError(
                    f"targets must be a tensor of the shape of idx {tuple(idx.shape)}. "
                    f"Found: {found}"
                )
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's attention weights over ``idx``: ``n_layer`` tensors ``(B, H, T, T)``.

        Computed in eval mode (no dropout); the model's mode is restored after.
        """
        was_training = self.training
        self.eval()
        try:
            return list(self.transformer(idx, need_weights=True).attentions)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue each row of ``idx`` ``(B, T)`` by ``max_new_tokens`` sampled tokens.

        Each token is drawn from ``softmax(logits / temperature)`` restricted to the
        ``top_k`` most likely (all when None); ``top_k=1`` is greedy decoding.
        ``generator`` makes sampling reproducible. With ``use_cache`` each step runs the
        model on the newest token only, reusing the keys and values of the earlier ones;
        the tokens are the same as without. Once the text outgrows ``block_size``, the
        model sees the last ``block_size`` tokens (recomputed each step, cache or not).

        Returns ``(B, T + max_new_tokens)``; the model's train/eval mode is restored.
        """
        _check_idx(idx, self.config.vocab_size)
        block_size = self.config.block_size
        if idx.size(1) > block_size:
            raise ParameterError(
                f"the prompt has {idx.size(1)} tokens, more than the context length "
                f"block_size={block_size}; keep its last {block_size} tokens"
            )
        max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens", minimum=0)
        temperature = check_positive_number(temperature, "temperature")
        if top_k is not None:
            top_k = min(check_positive_int(top_k, "top_k"), self.config.vocab_size)
        use_cache = check_bool(use_cache, "use_cache")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ParameterError(f"generator must be a torch.Generator. Found: {generator!r}")

        was_training = self.training
        self.eval()
        past = None
        try:
            for _ in range(max_new_tokens):
                if use_cache and past is not None and idx.size(1) <= block_size:
                    out = self.transformer(idx[:, -1:], past_key_values=past, use_cache=True)
                else:  # first step, no cache, or a window that slid past the context
                    out = self.transformer(idx[:, -block_size:], use_cache=use_cache)
                past = out.past_key_values
                logits = self.lm_head(out.hidden[:, -1, :])  # (B, V)
                idx = torch.cat([idx, self._sample(logits, temperature, top_k, generator)], dim=1)
        finally:
            self.train(was_training)
        return idx

    @staticmethod
    def _sample(logits, temperature, top_k, generator) -> torch.Tensor:
        if top_k == 1:
            return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        logits = logits / temperature
        if top_k is not None:
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=generator)  # (B, 1)
