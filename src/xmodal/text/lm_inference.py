"""Running a GPT language model on text: next-token scores over a text, prompts cut to the
context, sampled continuations and the attention over a sentence.

- :func:`next_token_scores`: the token-weighted cross-entropy of every next-token target
  of a :class:`~xmodal.text.lm_data.TokenBlocks` (``full=False``: each scored once), its
  perplexity (and bits per character) and the next-token accuracy.
- :func:`prompt_ids`: a prompt's ids cut to the context (a new line when empty).
- :func:`sample_texts`: continuations of a prompt sampled with a seeded generator.
- :func:`attention_over`: every layer's attention over a sentence, and its tokens.

Example::

    blocks = TokenBlocks(torch.tensor(tok.encode(test_text)), 64, full=False)
    next_token_scores(gpt, blocks, batch_size=64)   # {"loss", "perplexity", ...}
    sample_texts(gpt, tok, "a red", 2, max_new_tokens=50, seed=0)   # ["a red circle ...", ...]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from xmodal.errors import ParameterError
from xmodal.text.lm_data import IGNORE, TokenBlocks, Tokenizer, collate_blocks

__all__ = ["attention_over", "next_token_scores", "prompt_ids", "sample_texts"]


@torch.no_grad()
def next_token_scores(
    model: nn.Module, blocks: TokenBlocks, *, batch_size: int, bits_per_char: bool = False
) -> dict[str, float]:
    """Scores of ``model`` (a :class:`~xmodal.text.transformer.GPT`, in the mode it is in,
    on its device) over every next-token target of ``blocks``, ``batch_size`` blocks a
    batch: ``loss`` (the mean cross-entropy per token, nats), ``perplexity`` =
    exp(loss), with ``bits_per_char`` also loss / ln 2 (character tokens), ``accuracy``
    (the argmax is the next token) and ``tokens`` (the targets scored)."""
    loader = DataLoader(blocks, batch_size=batch_size, shuffle=False, collate_fn=collate_blocks)
    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    for batch in loader:
        x, y = batch["x"].to(device), batch["y"].to(device)
        logits, _ = model(x)
        total += float(
            F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum")
        )
        valid = y != IGNORE
        correct += int((logits.argmax(-1) == y)[valid].sum())
        count += int(valid.sum())
    assert count == blocks.n_targets
    loss = total / count
    metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
    if bits_per_char:
        metrics["bits_per_char"] = loss / math.log(2)
    metrics["accuracy"] = correct / count
    metrics["tokens"] = count
    return metrics


def prompt_ids(tokenizer: Tokenizer, text: str, block_size: int) -> tuple[list[int], bool]:
    """The ids of the prompt ``text`` (a new line when it has none), its last
    ``block_size`` kept; and whether it was cut."""
    ids = tokenizer.encode(text) if text else []
    if not ids:
        return [tokenizer.separator_id], False
    return ids[-block_size:], len(ids) > block_size


def sample_texts(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    n: int,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> list[str]:
    """``n`` continuations of ``prompt`` by ``model`` (a :class:`~xmodal.text.transformer.
    GPT`), the prompt included (:func:`prompt_ids` cuts it to the context), each
    ``max_new_tokens`` tokens drawn by :meth:`GPT.generate` with a generator seeded by
    ``seed``: the same texts for the same seed."""
    device = next(model.parameters()).device
    ids, _ = prompt_ids(tokenizer, prompt, model.config.block_size)
    gen = torch.Generator(device=device).manual_seed(seed)
    idx = torch.tensor([ids] * n, dtype=torch.long, device=device)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=gen)
    texts = []
    for row in out.cpu():
        more = tokenizer.decode(row[len(ids) :].tolist())
        if tokenizer.level == "word" and prompt[-1:].strip() and more[:1].strip():
            more = " " + more  # words are joined by spaces, the prompt's last one too
        texts.append(prompt + more)
    return texts


def attention_over(
    model: nn.Module, tokenizer: Tokenizer, text: str, *, max_tokens: int, name: str = "text"
) -> tuple[list[torch.Tensor], list[str]]:
    """Every layer's attention weights of ``model`` (a :class:`~xmodal.text.transformer.
    GPT`) over the first ``max_tokens`` tokens of ``text``: ``n_layer`` tensors ``(H, T,
    T)`` on the CPU, and the ``T`` tokens as text (what
    :func:`~xmodal.viz.transformer_attention.plot_attention_map` takes). Raises
    ParameterError, naming ``text`` as ``name``, for a text without tokens."""
    ids = tokenizer.encode(text)[:max_tokens]
    if not ids:
        raise ParameterError(f"{name} has no tokens. Found: {text!r}")
    idx = torch.tensor([ids], device=next(model.parameters()).device)
    maps = [m[0].cpu() for m in model.attention_maps(idx)]
    return maps, [tokenizer.decode([i]) for i in ids]
