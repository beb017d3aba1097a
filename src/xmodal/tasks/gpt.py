"""The ``gpt`` task: a GPT language model trained, scored and sampled by the engine.

Data: the world's captions, one a line (``data=world``, the default), or any UTF-8 text
file (``data=FILE``), its end held out as val and test. Tokens are characters
(``data.level=char``, ``chars.json``) or words (``data.level=word``, ``vocab.json``).
Metrics on val and test: next-token ``loss`` (nats per token), ``perplexity``,
``bits_per_char`` (characters), ``accuracy`` and ``tokens`` scored. Figures: a layer's
attention over a held-out sentence, and sampled texts. See docs/transformer.md.

Example::

    xmodal train gpt data=shakespeare.txt model.block_size=256
    xmodal predict gpt --run runs/gpt/<id> "there is a red"
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from xmodal._checks import check_choice
from xmodal.engine.base import (
    Section,
    TaskConfig,
    choice,
    flag,
    fraction,
    integer,
    number,
    trainer_defaults,
)
from xmodal.engine.config import TrainerConfig
from xmodal.engine.schedule import AdamConfig, warmup_cosine, world_size
from xmodal.engine.task import Task
from xmodal.errors import ParameterError
from xmodal.tasks._text import HeldOutTextConfig
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
from xmodal.text.lm_inference import attention_over, next_token_scores, prompt_ids, sample_texts
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
    bias: bool = flag(True)

    def __post_init__(self) -> None:
        check_transformer_fields(prefix="model.", **dataclasses.asdict(self))


@dataclass
class GPTDataConfig(HeldOutTextConfig):
    """Where the text comes from (:class:`~xmodal.tasks._text.HeldOutTextConfig`) and how
    it becomes tokens. ``name=world``: the captions of ``train_size`` / ``val_size`` /
    ``test_size`` scenes. ``level``: ``char`` or ``word`` (``min_freq`` for words)."""

    train_size: int = 1000
    val_size: int = 100
    test_size: int = 200
    # The text is in memory: worker processes would only copy it (and miss set_epoch).
    num_workers: int = 0
    level: str = choice("char", LEVELS)
    min_freq: int = integer(1)


@dataclass
class GPTOptimConfig(AdamConfig):
    """AdamW (weight decay on matrices and embeddings only) with a linear warm-up and a
    cosine decay to ``min_lr_ratio * lr``."""

    weight_decay: float = 0.1
    min_lr_ratio: float = 0.1
    beta2: float = fraction(0.99)

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
class GPTEvalConfig(Section):
    """Scoring, sampling (report samples and ``predict``) and the attention figure.

    ``prompt`` starts the report's samples ("" starts a new line). ``attention_text``:
    the sentence of the attention figure (default: the first held-out line);
    ``attention_layer`` (negative counts from the last) and ``attention_head`` (None: all
    heads) choose the map.
    """

    key: ClassVar[str] = "eval"

    batch_size: int = integer(64)
    max_new_tokens: int = integer(200)
    temperature: float = number(0.8, positive=True)
    top_k: int | None = integer(None, optional=True)
    n_samples: int = integer(4, minimum=0)
    prompt: str = ""
    attention_text: str | None = None
    attention_layer: int = -1
    attention_head: int | None = integer(None, minimum=0, optional=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.attention_layer, bool) or not isinstance(self.attention_layer, int):
            raise ParameterError(
                f"eval.attention_layer must be an int. Found: {self.attention_layer!r}"
            )


@dataclass
class GPTConfig(TaskConfig):
    model: GPTModelConfig = field(default_factory=GPTModelConfig)
    data: GPTDataConfig = field(default_factory=GPTDataConfig)
    optim: GPTOptimConfig = field(default_factory=GPTOptimConfig)
    eval: GPTEvalConfig = field(default_factory=GPTEvalConfig)
    trainer: TrainerConfig = trainer_defaults(max_epochs=4, gradient_clip_val=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
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
        return TransformerConfig(vocab_size=vocab_size, **dataclasses.asdict(self.model))


# ----------------------------------------------------------------------------- the task


class GPTTask(Task):
    """Causal language modelling (a text representation) with a GPT."""

    name = "gpt"
    family = "representations"
    summary = "GPT: a causal transformer language model of characters or words (any text file)"
    Config = GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.tokenizer = None
        self._ids: dict[str, torch.Tensor] = {}
        self._train_blocks: TokenBlocks | None = None
        self._text_parts: dict[str, str] | None = None

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
        if self._text_parts is None:
            parts = split_text(
                read_text(d.path), val_fraction=d.val_fraction, test_fraction=d.test_fraction
            )
            self._text_parts = dict(zip(SPLITS, parts, strict=True))
        return self._text_parts[split]

    def ids(self, split: str) -> torch.Tensor:
        """The token ids of ``split`` (``train``, ``val`` or ``test``), ``(N,)``."""
        check_choice(split, "split", SPLITS)
        if split not in self._ids:
            ids = self.tokenizer.encode(self.data(split))
            self._ids[split] = torch.tensor(ids, dtype=torch.long)
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
        d = self.config.data
        source = "the world's captions" if d.name == "world" else repr(d.path)
        name = f"{split} part of {source}"
        return TokenBlocks(self.ids(split), self.config.model.block_size, full=full, name=name)

    def train_dataloader(self) -> DataLoader:
        self._train_blocks = self._blocks("train", full=True)
        return self.train_loader(self._train_blocks, collate_fn=collate_blocks)

    def val_dataloader(self) -> DataLoader:
        blocks = self._blocks("val", full=False)
        batch_size = self.config.eval.batch_size
        return DataLoader(blocks, batch_size=batch_size, shuffle=False, collate_fn=collate_blocks)

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
        return next_token_scores(
            model,
            self._blocks(split, full=False),
            batch_size=self.config.eval.batch_size,
            bits_per_char=self.config.data.level == "char",
        )

    def sample(
        self, model: nn.Module, prompt: str, n: int, *, seed: int | None = None
    ) -> list[str]:
        """``n`` continuations of ``prompt`` (the prompt included), reproducible by ``seed``
        (default: the run's)."""
        e, seed = self.config.eval, self.config.seed if seed is None else seed
        kw = dict(max_new_tokens=e.max_new_tokens, temperature=e.temperature, top_k=e.top_k)
        return sample_texts(model, self.tokenizer, prompt, n, seed=seed, **kw)

    def figures(self, model: nn.Module) -> dict:
        from xmodal.viz.text import plot_text_samples
        from xmodal.viz.transformer_attention import plot_attention_map

        e = self.config.eval
        sentence = e.attention_text
        if sentence is None:  # the first held-out line
            sentence = next(line for line in self.data("val").split("\n") if line.strip())
        maps, tokens = attention_over(
            model,
            self.tokenizer,
            sentence,
            max_tokens=min(_ATTENTION_TOKENS, self.config.model.block_size),
            name="eval.attention_text",
        )
        title = f"self-attention over {sentence[:60]!r}"
        figures = {
            f"attention_layer{e.attention_layer % len(maps)}": plot_attention_map(
                maps, tokens, layer=e.attention_layer, head=e.attention_head, title=title
            )
        }
        if e.n_samples:
            samples = self.sample(model, e.prompt, e.n_samples)
            title = f"samples (temperature {e.temperature:g}, top-k {e.top_k}, "
            title += f"{e.max_new_tokens} tokens)"
            figures["samples"] = plot_text_samples(samples, title=title)
            text = "\n\n".join(f"--- sample {k} ---\n{s}" for k, s in enumerate(samples))
            figures["samples.txt"] = text + "\n"
        return figures

    def predict(self, model: nn.Module, inputs: Sequence[str], out_dir: Path) -> list[dict]:
        """Continue each prompt: ``{"input", "text" (prompt + continuation),
        "continuation", "truncated"}``; a prompt longer than the context keeps its end."""
        if not inputs:
            raise ParameterError("predict gpt needs at least one prompt. Found none")
        records = []
        for k, prompt in enumerate(inputs):
            _, truncated = prompt_ids(self.tokenizer, prompt, self.config.model.block_size)
            text = self.sample(model, prompt, 1, seed=self.config.seed + k)[0]
            record = {"input": prompt, "text": text, "continuation": text[len(prompt) :]}
            records.append({**record, "truncated": truncated, "files": []})
        return records
