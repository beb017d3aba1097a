"""The ``gpt`` task: a GPT language model trained, scored and sampled by the engine.

Data: the world's captions by default (``data=world``: every caption of ``train_size``
scenes, one per line, is the training text; the val and test scenes give the held-out
text), or any UTF-8 text file (``data=FILE``, short for ``data.name=text data.path=FILE``),
cut into contiguous train / val / test parts. Tokens are characters (``data.level=char``,
the default; ``chars.json`` in the run folder) or words (``data.level=word``; line ends
are ``<eos>``; ``vocab.json``). Training sees the text as blocks of ``model.block_size``
tokens, cut at a different offset every epoch.

Metrics (``evaluate``) on val and test: the mean next-token cross-entropy (``loss``,
nats per token), ``perplexity`` = exp(loss), ``bits_per_char`` = loss / ln 2 at character
level, next-token ``accuracy`` and the number of ``tokens`` scored. Figures: the attention
maps of a layer over a held-out sentence, and sampled texts (also in ``samples.txt``).

Example::

    xmodal train gpt                                      # the world's captions, a few minutes
    xmodal train gpt data=shakespeare.txt model.block_size=256
    xmodal train gpt data.level=word
    xmodal predict gpt --run runs/gpt/<id> "there is a red"
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.engine.base import DataConfig, TaskConfig, trainer_defaults
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import warmup_cosine, world_size
from xmodal.engine.task import Task
from xmodal.errors import ParameterError
from xmodal.text.lm_data import (
    LEVELS,
    TokenBlocks,
    build_tokenizer,
    collate_blocks,
    load_tokenizer,
    read_text,
    split_text,
    tokenizer_file,
)
from xmodal.text.transformer import GPT, TransformerConfig, check_transformer_fields

__all__ = [
    "GPTConfig",
    "GPTDataConfig",
    "GPTEvalConfig",
    "GPTModelConfig",
    "GPTOptimConfig",
    "GPTTask",
]

SPLITS = ("train", "val", "test")
_ATTENTION_TOKENS = 64  # the attention figure's sentence is cut to this many tokens


@dataclass
class GPTModelConfig:
    """The transformer (see :class:`~xmodal.text.transformer.TransformerConfig`); the
    vocabulary size comes from the data."""

    # The world's captions are ~43 characters: 64 holds one with the end of the one before.
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    # No dropout by default: on the world the validation loss follows the training loss
    # (nothing to regularise in a few minutes); raise it for a small text file.
    dropout: float = 0.0
    position: str = "learned"
    norm: str = "pre"
    bias: bool = True

    def __post_init__(self) -> None:
        check_transformer_fields(prefix="model.", **{f.name: getattr(self, f.name)
                                                     for f in fields(self)})  # fmt: skip


@dataclass
class GPTDataConfig(DataConfig):
    """Where the text comes from and how it becomes tokens.

    ``name=world`` (default): the captions of the world's scenes (``world_seed``; scenes
    per split ``train_size`` / ``val_size`` / ``test_size``). ``name=text``: the UTF-8 file
    ``path``, its last ``val_fraction + test_fraction`` held out. ``data=FILE`` on the
    command line (``name`` set to a path) means ``name=text path=FILE``; setting ``path``
    alone also selects it. ``level``: ``char`` or ``word`` (``min_freq`` for words).
    """

    sources: ClassVar[tuple[str, ...]] = ("world", "text")

    train_size: int = 1000
    val_size: int = 100
    test_size: int = 200
    # The text is in memory: worker processes would only copy it (and miss set_epoch).
    num_workers: int = 0
    path: str | None = None
    level: str = "char"
    min_freq: int = 1
    val_fraction: float = 0.05
    test_fraction: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(
                f"data.name must be 'world', 'text' or a file path. Found: {self.name!r}"
            )
        if self.name not in self.sources:  # `data=FILE`: the name is the file
            if self.path is not None and self.path != self.name:
                raise ParameterError(
                    f"data={self.name!r} names a file, but data.path={self.path!r} names "
                    "another; give one of them"
                )
            self.path, self.name = self.name, "text"
        elif self.path is not None:
            self.name = "text"
        if self.name == "text" and not self.path:
            raise ParameterError("data.name=text needs data.path (a UTF-8 text file). Found: None")
        super().__post_init__()
        check_choice(self.level, "data.level", LEVELS)
        check_positive_int(self.min_freq, "data.min_freq")
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            if not 0.0 < value < 1.0:
                raise ParameterError(f"data.{key} must be in (0, 1). Found: {value!r}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ParameterError(
                "data.val_fraction + data.test_fraction must be < 1. "
                f"Found: {self.val_fraction} + {self.test_fraction}"
            )


@dataclass
class GPTOptimConfig:
    """AdamW (weight decay on matrices and embeddings only) with a linear warm-up and a
    cosine decay to ``min_lr_ratio * lr``."""

    lr: float = 2e-3
    weight_decay: float = 0.1
    beta2: float = 0.99
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        check_positive_number(self.lr, "optim.lr")
        check_positive_number(self.weight_decay, "optim.weight_decay", allow_zero=True)
        if not 0.0 <= self.beta2 < 1.0:
            raise ParameterError(f"optim.beta2 must be in [0, 1). Found: {self.beta2!r}")
        check_positive_int(self.warmup_steps, "optim.warmup_steps", minimum=0)
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ParameterError(
                f"optim.min_lr_ratio must be in [0, 1]. Found: {self.min_lr_ratio}"
            )

    def configure(self, params, total_steps: int) -> dict:
        """AdamW over ``params`` on the warm-up + cosine plan for ``total_steps``."""
        params = [p for p in params if p.requires_grad]
        # nanoGPT's rule: decay every matrix (and embedding), not biases or norm gains.
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": self.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.lr, betas=(0.9, self.beta2))
        return warmup_cosine(
            optimizer,
            warmup_steps=self.warmup_steps,
            total_steps=total_steps,
            min_lr_ratio=self.min_lr_ratio,
        )


@dataclass
class GPTEvalConfig:
    """Scoring, sampling (report samples and ``predict``) and the attention figure.

    ``prompt`` starts the report's samples ("" starts a new line). ``attention_text``:
    the sentence of the attention figure (default: the first held-out line);
    ``attention_layer`` (negative counts from the last) and ``attention_head`` (None: all
    heads) choose the map.
    """

    batch_size: int = 64
    max_new_tokens: int = 200
    temperature: float = 0.8
    top_k: int | None = None
    n_samples: int = 4
    prompt: str = ""
    attention_text: str | None = None
    attention_layer: int = -1
    attention_head: int | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.batch_size, "eval.batch_size")
        check_positive_int(self.max_new_tokens, "eval.max_new_tokens")
        check_positive_number(self.temperature, "eval.temperature")
        if self.top_k is not None:
            check_positive_int(self.top_k, "eval.top_k")
        check_positive_int(self.n_samples, "eval.n_samples", minimum=0)
        if isinstance(self.attention_layer, bool) or not isinstance(self.attention_layer, int):
            raise ParameterError(
                f"eval.attention_layer must be an int. Found: {self.attention_layer!r}"
            )
        if self.attention_head is not None:
            check_positive_int(self.attention_head, "eval.attention_head", minimum=0)


@dataclass
class GPTConfig(TaskConfig):
    model: GPTModelConfig = field(default_factory=GPTModelConfig)
    data: GPTDataConfig = field(default_factory=GPTDataConfig)
    optim: GPTOptimConfig = field(default_factory=GPTOptimConfig)
    eval: GPTEvalConfig = field(default_factory=GPTEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=4, gradient_clip_val=1.0)

    def __post_init__(self) -> None:
        m, e = self.model, self.eval
        if not -m.n_layer <= e.attention_layer < m.n_layer:
            raise ParameterError(
                f"eval.attention_layer must be in [{-m.n_layer}, {m.n_layer}) (model.n_layer="
                f"{m.n_layer}). Found: {e.attention_layer}"
            )
        if e.attention_head is not None and e.attention_head >= m.n_head:
            raise ParameterError(
                f"eval.attention_head must be None or in [0, {m.n_head}) (model.n_head="
                f"{m.n_head}). Found: {e.attention_head}"
            )

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("val", "test")

    def transformer(self, vocab_size: int) -> TransformerConfig:
        m = self.model
        return TransformerConfig(vocab_size=vocab_size, **{f.name: getattr(m, f.name)
                                                           for f in fields(m)})  # fmt: skip


# ----------------------------------------------------------------------------- the task


class GPTTask(Task):
    """Causal language modelling (a text representation) with a GPT."""

    name = "gpt"
    family = "representations"
    summary = "GPT: a causal transformer language model of characters or words (any text file)"
    default_data = "world"
    Config = GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.tokenizer = None
        self._ids: dict[str, torch.Tensor] = {}
        self._train_blocks: TokenBlocks | None = None

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> str:
        """The captions of the world's scenes of ``split``, one a line."""
        scenes = range(self.config.data.size(split))
        world = self.world
        return "".join(
            c + "\n"
            for i in scenes
            for c in world.scene(split, i, audio=False, questions=False).captions
        )

    def text_data(self, split: str) -> str:
        """The part of the file ``data.path`` for ``split``: its last fractions held out."""
        d = self.config.data
        if not hasattr(self, "_text_parts"):
            parts = split_text(read_text(d.path), val_fraction=d.val_fraction,
                               test_fraction=d.test_fraction)  # fmt: skip
            self._text_parts = dict(zip(SPLITS, parts, strict=True))
        return self._text_parts[split]

    def _where(self, split: str) -> str:
        d = self.config.data
        source = "the world's captions" if d.name == "world" else repr(d.path)
        return f"{split} part of {source}"

    def ids(self, split: str) -> torch.Tensor:
        """The token ids of ``split`` (``train``, ``val`` or ``test``), ``(N,)``."""
        check_choice(split, "split", SPLITS)
        if split not in self._ids:
            self._ids[split] = torch.tensor(
                self.tokenizer.encode(self.data(split)), dtype=torch.long
            )
        return self._ids[split]

    def artifacts(self) -> list[str]:
        return [tokenizer_file(self.config.data.level)]

    def setup(self, run_dir: Path, stage: str) -> None:
        d = self.config.data
        if stage == "fit":
            self.tokenizer = build_tokenizer(d.level, self.data("train"), min_freq=d.min_freq)
            self.tokenizer.save(Path(run_dir) / tokenizer_file(d.level))
        else:
            self.tokenizer = load_tokenizer(d.level, run_dir)

    def _blocks(self, split: str, *, full: bool) -> TokenBlocks:
        return TokenBlocks(self.ids(split), self.config.model.block_size, full=full,
                           name=self._where(split))  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        self._train_blocks = self._blocks("train", full=True)
        return self.train_loader(self._train_blocks, collate_fn=collate_blocks)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._blocks("val", full=False), batch_size=self.config.eval.batch_size,
                          shuffle=False, collate_fn=collate_blocks)  # fmt: skip

    def on_train_epoch_start(self, epoch: int) -> None:
        if self._train_blocks is not None:
            self._train_blocks.set_epoch(epoch, self.config.seed)

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        return GPT(self.config.transformer(len(self.tokenizer)))

    def steps_per_epoch(self) -> int:
        n = len(self._train_blocks) if self._train_blocks is not None else 1
        return math.ceil(math.ceil(n / world_size()) / self.config.data.batch_size)

    def training_step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        _, loss = model(batch["x"], batch["y"])
        return loss, {}

    def validation_step(self, model: nn.Module, batch) -> dict[str, float]:
        _, loss = model(batch["x"], batch["y"])
        return {"loss": float(loss)}

    # ------------------------------------------------------------------ results

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Token-weighted loss over every next-token target of ``split``, and what follows."""
        blocks = self._blocks(split, full=False)
        loader = DataLoader(blocks, batch_size=self.config.eval.batch_size, shuffle=False,
                            collate_fn=collate_blocks)  # fmt: skip
        device = self.model_device(model)
        total, correct, count = 0.0, 0, 0
        for batch in loader:
            x, y = batch["x"].to(device), batch["y"].to(device)
            logits, _ = model(x)
            total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100,
                                           reduction="sum"))  # fmt: skip
            valid = y != -100
            correct += int((logits.argmax(-1) == y)[valid].sum())
            count += int(valid.sum())
        assert count == blocks.n_targets
        loss = total / count
        metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
        if self.config.data.level == "char":
            metrics["bits_per_char"] = loss / math.log(2)
        metrics["accuracy"] = correct / count
        metrics["tokens"] = count
        return metrics

    def _prompt_ids(self, text: str) -> tuple[list[int], bool]:
        """Ids of a prompt (a new line when empty), cut to the context; and whether cut."""
        ids = self.tokenizer.encode(text) if text else []
        if not ids:
            return [self.tokenizer.separator_id], False
        limit = self.config.model.block_size
        return ids[-limit:], len(ids) > limit

    def sample(
        self, model: nn.Module, prompt: str, n: int, *, seed: int | None = None
    ) -> list[str]:
        """``n`` continuations of ``prompt`` (the prompt included), reproducible by ``seed``."""
        e = self.config.eval
        device = self.model_device(model)
        ids, _ = self._prompt_ids(prompt)
        gen = torch.Generator(device=device).manual_seed(self.config.seed if seed is None else seed)
        idx = torch.tensor([ids] * n, dtype=torch.long, device=device)
        out = model.generate(idx, e.max_new_tokens, temperature=e.temperature, top_k=e.top_k,
                             generator=gen)  # fmt: skip
        texts = []
        for row in out.cpu():
            more = self.tokenizer.decode(row[len(ids) :].tolist())
            if self.config.data.level == "word" and prompt[-1:].strip() and more[:1].strip():
                more = " " + more  # words are joined by spaces, the prompt's last one too
            texts.append(prompt + more)
        return texts

    def _attention_sentence(self) -> str:
        text = self.config.eval.attention_text
        if text is None:
            lines = [line for line in self.data("val").split("\n") if line.strip()]
            text = lines[0]
        return text

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.transformer_attention import plot_attention_map

        e = self.config.eval
        sentence = self._attention_sentence()
        ids = self.tokenizer.encode(sentence)[
            : min(_ATTENTION_TOKENS, self.config.model.block_size)
        ]
        if not ids:
            raise ParameterError(f"eval.attention_text has no tokens. Found: {sentence!r}")
        idx = torch.tensor([ids], device=self.model_device(model))
        maps = [m[0].cpu() for m in model.attention_maps(idx)]
        layer = e.attention_layer
        tokens = [self.tokenizer.decode([i]) for i in ids]
        figures = {
            f"attention_layer{layer % len(maps)}": plot_attention_map(
                maps,
                tokens,
                layer=layer,
                head=e.attention_head,
                title=f"self-attention over {sentence[:60]!r}",
            )  # fmt: skip
        }
        if e.n_samples:
            samples = self.sample(model, e.prompt, e.n_samples)
            text = "\n\n".join(f"--- sample {k} ---\n{s}" for k, s in enumerate(samples))
            figures["samples"] = _text_figure(samples, e)
            figures["samples.txt"] = text + "\n"
        return figures

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        """Continue each prompt: ``{"input", "text" (prompt + continuation),
        "continuation", "truncated"}``; a prompt longer than the context keeps its end."""
        if not inputs:
            raise ParameterError("predict gpt needs at least one prompt. Found none")
        records = []
        for k, prompt in enumerate(inputs):
            _, truncated = self._prompt_ids(prompt)
            text = self.sample(model, prompt, 1, seed=self.config.seed + k)[0]
            records.append({"input": prompt, "text": text, "continuation": text[len(prompt) :],
                            "truncated": truncated, "files": []})  # fmt: skip
        return records


def _text_figure(samples: list[str], e: GPTEvalConfig):
    """The samples as a figure, so the report shows them."""
    import textwrap

    from matplotlib.figure import Figure

    blocks = []
    for k, s in enumerate(samples):
        lines = [w for line in s.split("\n") for w in (textwrap.wrap(line, 100) or [""])]
        blocks.append(f"sample {k}:\n" + "\n".join(lines[:12]))
    body = "\n\n".join(blocks)
    n_lines = body.count("\n") + 3
    fig = Figure(figsize=(9, 0.15 * n_lines + 0.4))
    title = f"samples (temperature {e.temperature:g}, top-k {e.top_k}, {e.max_new_tokens} tokens)"
    fig.text(0.01, 0.99, title + "\n\n" + body, va="top", ha="left", family="monospace",
             fontsize=8, parse_math=False)  # fmt: skip
    return fig
