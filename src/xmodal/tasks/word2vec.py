"""The ``word2vec`` task: skip-gram word vectors trained, scored and queried by the engine.

Data: the world's captions by default (``data=world``: every caption of ``train_size``
scenes, tokenized as the caption and retrieval tasks tokenize them, one a line), or any
UTF-8 text file (``data=FILE``, short for ``data.name=text data.path=FILE``), read as
``xmodal word2vec train`` reads it: one sentence a line, whitespace tokens as they are.

Training: a step runs the numba kernel of :func:`~xmodal.text.word2vec.train_word2vec`
on ``data.batch_size`` jobs (``train_word2vec``'s: whole sentences, about
``data.batch_words`` words each, in corpus order) on one thread, at the learning rate of
that point of the run (linear from ``optim.alpha`` to ``optim.min_alpha`` over the planned
epochs): the vectors of ``xmodal word2vec train CORPUS --threads 1``, which stays the fast
path (several threads, the corpus streamed from disk). Checkpoints hold the vectors.

Metrics (intrinsic, the same for every split): on the world, how often the nearest
neighbours of a colour, shape or size word are words of its kind (R-precision, with the
chance level); with ``eval.analogies`` / ``eval.similarity`` files, analogy accuracy and
word-similarity correlation as gensim computes them. The run folder is also a word2vec
folder (``vectors.bin``, ``vocab.txt``, ``config.json``): ``model.word2vec=RUN`` of the
caption and retrieval tasks reads it, and so do the ``xmodal word2vec`` commands.

Example::

    xmodal train word2vec                                  # the world's captions
    xmodal train word2vec data=corpus.txt model.dim=300 trainer.max_epochs=10
    xmodal predict word2vec --run runs/word2vec/<id> red "big - large + small" -n 5
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from xmodal._checks import check_positive_int
from xmodal.engine.base import Section, TaskConfig, choice, flag, integer, trainer_defaults
from xmodal.engine.config import TrainerConfig
from xmodal.engine.options import option
from xmodal.engine.task import Task
from xmodal.errors import ParameterError
from xmodal.tasks._text import TextDataConfig
from xmodal.text import word2vec as w2v
from xmodal.text.word2vec_data import Word2VecJobs, collate_jobs, read_corpus, read_vocab
from xmodal.text.word2vec_eval import category_precision, evaluate_analogies, evaluate_similarity
from xmodal.text.word2vec_model import SkipGram
from xmodal.world.language import word_categories as world_categories

__all__ = ["Word2VecDataConfig", "Word2VecEvalConfig", "Word2VecModelConfig",
           "Word2VecOptimConfig", "Word2VecTask", "Word2VecTaskConfig"]  # fmt: skip

_FIELDS = {f.name: f for f in fields(w2v.Word2VecConfig)}
_EPOCHS = _FIELDS["epochs"].default  # the trainer's max_epochs
_DATA_FIELDS = ("min_count", "max_vocab", "max_sentence_length", "batch_words")
_EVAL = inspect.signature(evaluate_analogies).parameters


def _w2v(name: str):
    """A config field with :class:`Word2VecConfig`'s default and help: one source."""
    return field(default=_FIELDS[name].default, metadata={**_FIELDS[name].metadata, "w2v": 1})


class _Word2VecFields:
    """Mixed into a section (with its ``key``): its :func:`_w2v` fields are checked as
    ``Word2VecConfig`` checks them, after the section's own checks."""

    def __post_init__(self) -> None:
        own = getattr(super(), "__post_init__", None)
        if own is not None:
            own()
        values = {f.name: getattr(self, f.name) for f in fields(self) if "w2v" in f.metadata}
        w2v.check_word2vec_fields(f"{self.key}.", **values)


@dataclass
class Word2VecModelConfig(_Word2VecFields):
    """The skip-gram model: vector size, context window, noise words and their law."""

    key: ClassVar[str] = "model"

    dim: int = _w2v("dim")
    window: int = _w2v("window")
    negative: int = _w2v("negative")
    ns_exponent: float = _w2v("ns_exponent")


@dataclass
class Word2VecDataConfig(_Word2VecFields, TextDataConfig):
    """The corpus and its vocabulary. ``name=world``: the captions of ``train_size`` scenes
    (``val_size`` and ``test_size`` are not used: the metrics need no held-out text).
    ``name=text`` with ``path``, or ``data=FILE``. ``batch_size``: jobs per step."""

    train_size: int = 2000
    batch_size: int = 1
    num_workers: int = 0  # the corpus is in memory: workers would only copy it
    min_count: int = _w2v("min_count")
    max_vocab: int | None = _w2v("max_vocab")
    max_sentence_length: int = _w2v("max_sentence_length")
    batch_words: int = _w2v("batch_words")


@dataclass
class Word2VecOptimConfig(_Word2VecFields):
    """Plain SGD inside the kernel: the learning rate falls linearly from ``alpha`` to
    ``min_alpha`` over the run; ``sample`` drops frequent words at random."""

    key: ClassVar[str] = "optim"

    alpha: float = _w2v("alpha")
    min_alpha: float = _w2v("min_alpha")
    sample: float = _w2v("sample")


@dataclass
class Word2VecEvalConfig(Section):
    """Scoring and figures. ``analogies`` (questions-words format) and ``similarity``
    (wordsim353 format): files scored as gensim does, among the ``restrict_vocab`` most
    frequent words. ``words``: the projection figure's words (default: the world's
    colour, shape and size words, or the ``n_words`` most frequent); ``method``: pca|tsne.
    """

    key: ClassVar[str] = "eval"

    analogies: str | None = None
    similarity: str | None = None
    restrict_vocab: int = integer(_EVAL["restrict_vocab"].default)
    case_insensitive: bool = flag(_EVAL["case_insensitive"].default)
    words: list[str] | None = None
    n_words: int = integer(40, minimum=2)
    method: str = choice("pca", ("pca", "tsne"))


@dataclass
class Word2VecTaskConfig(TaskConfig):
    seed: int = _w2v("seed")
    model: Word2VecModelConfig = field(default_factory=Word2VecModelConfig)
    data: Word2VecDataConfig = field(default_factory=Word2VecDataConfig)
    optim: Word2VecOptimConfig = field(default_factory=Word2VecOptimConfig)
    eval: Word2VecEvalConfig = field(default_factory=Word2VecEvalConfig)
    # The kernel updates CPU memory in place, in one process.
    trainer: TrainerConfig = trainer_defaults(max_epochs=_EPOCHS, accelerator="cpu")

    def __post_init__(self) -> None:
        super().__post_init__()
        t = self.trainer
        if t.accelerator != "cpu" or t.devices not in (1, "1", "auto") or t.num_nodes != 1:
            raise ParameterError(
                "word2vec trains in one process on the CPU (its kernel updates the vectors "
                "in place): trainer.accelerator must be 'cpu' and trainer.devices 1. Found: "
                f"{t.accelerator!r}, {t.devices!r} (num_nodes {t.num_nodes})"
            )
        if t.max_epochs < 1 and t.max_steps < 1:  # the learning rate's decay needs a plan
            raise ParameterError("set trainer.max_epochs >= 1 or trainer.max_steps >= 1")

    def word2vec(self) -> w2v.Word2VecConfig:
        """The same settings as :func:`train_word2vec`'s config (one thread)."""
        data = {k: getattr(self.data, k) for k in _DATA_FIELDS}
        return w2v.Word2VecConfig(**asdict(self.model), **asdict(self.optim), **data,
                                  epochs=max(self.trainer.max_epochs, 1), threads=1,
                                  seed=self.seed)  # fmt: skip


# ----------------------------------------------------------------------------- the task


class Word2VecTask(Task):
    """Skip-gram word vectors with negative sampling (a text representation)."""

    name = "word2vec"
    family = "representations"
    summary = "word2vec: skip-gram word vectors with negative sampling (any text file)"
    Config = Word2VecTaskConfig
    manual_optimization = True  # the kernel updates the vectors itself

    @dataclass
    class PredictOptions:
        n: int = option(10, "neighbours per query", flags=("-n",))

    def __init__(self, config: Word2VecTaskConfig) -> None:
        super().__init__(config)
        self.corpus, self.words, self.counts = None, (), None
        self._jobs: Word2VecJobs | None = None
        self._epoch = 0

    # ------------------------------------------------------------------ data

    def world_data(self, split: str) -> list[str]:
        """The captions of the world's scenes of ``split``, tokenized, one a line."""
        from xmodal.text.vocab import tokenize

        world = self.world
        return [" ".join(tokenize(c)) for i in range(self.config.data.size(split))
                for c in world.scene(split, i, audio=False, questions=False).captions]  # fmt: skip

    def text_data(self, split: str) -> str:
        """The file ``data.path``, whole (word2vec holds nothing out)."""
        return self.config.data.path

    def artifacts(self) -> list[str]:
        return ["vocab.txt"]

    def setup(self, run_dir: Path, stage: str) -> None:
        d = self.config.data
        if stage == "fit":
            self.corpus = read_corpus(self.data("train"), min_count=d.min_count,
                                      max_vocab=d.max_vocab,
                                      max_sentence_length=d.max_sentence_length)  # fmt: skip
            self.words, self.counts = self.corpus.words, self.corpus.counts
            self.corpus.write_vocab(Path(run_dir) / "vocab.txt")
        else:
            self.words, self.counts = read_vocab(Path(run_dir) / "vocab.txt")

    def train_dataloader(self):
        self._jobs = Word2VecJobs(self.corpus, self.config.data.batch_words)
        # In corpus order, as train_word2vec takes them.
        return self.train_loader(self._jobs, collate_fn=collate_jobs, shuffle=False)

    def on_train_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    # ------------------------------------------------------------------ model

    def build_model(self) -> nn.Module:
        m, o = self.config.model, self.config.optim
        return SkipGram(self.words, self.counts, **asdict(m), sample=o.sample,
                        seed=self.config.seed)  # fmt: skip

    def steps_per_epoch(self) -> int:
        return -(-len(self._jobs) // self.config.data.batch_size)

    def configure_optimizers(self, model: nn.Module):
        # The kernel steps the vectors; this optimizer has no gradients to apply. Calling
        # its step() counts the step (trainer.max_steps, checkpoints) and tells the engine
        # that the weights are changing, so a Ctrl-C checkpoint is never taken halfway.
        return torch.optim.SGD(model.parameters(), lr=self.config.optim.alpha)

    def training_step(self, model: SkipGram, batch, step=None):
        (optimizer,) = step.optimizers
        optimizer.step()
        o, t, epoch = self.config.optim, self.config.trainer, self._epoch
        # The learning rate falls to min_alpha over the words of the planned run.
        jobs = t.max_steps * self.config.data.batch_size
        total = self._jobs.planned_words(epochs=t.max_epochs, jobs=jobs)
        loss, pairs, alphas = 0.0, 0, []
        for job in batch["jobs"]:
            done = self._jobs.words_before(epoch, job["job"])
            alphas.append(w2v.linear_alpha(o.alpha, o.min_alpha, done, total))
            _, job_loss, job_pairs = model.train_job(
                job["ids"].numpy(), job["sent_ends"].numpy(), alpha_start=alphas[-1],
                alpha_end=w2v.linear_alpha(o.alpha, o.min_alpha, done + len(job["ids"]), total),
                seed=w2v.job_seed(self.config.seed, epoch, job["job"]),
            )  # fmt: skip
            loss, pairs = loss + job_loss, pairs + job_pairs
        # The mean negative-sampling loss per (word, context) pair of the step's jobs.
        return torch.tensor(loss / max(pairs, 1)), {"alpha": alphas[0]}

    # ------------------------------------------------------------------ results

    def export(self, model: SkipGram, run_dir: Path) -> list[str]:
        """The vectors in word2vec's own files, which gensim and ``model.word2vec`` read."""
        meta = {"config": self.config.word2vec().to_dict(), "corpus": self.corpus.info}
        model.word_vectors(meta=meta).save(run_dir)
        return ["vectors.bin", "vocab.txt", "config.json"]

    def evaluate(self, model: SkipGram, split: str) -> dict:
        """The vectors' intrinsic scores (``split`` does not change them)."""
        wv = model.word_vectors()
        e = self.config.eval
        metrics: dict = {"vocabulary": len(wv)}
        if self.config.data.name == "world":
            metrics["categories"] = category_precision(wv, world_categories())
        kw = {"restrict_vocab": e.restrict_vocab, "case_insensitive": e.case_insensitive}
        if e.analogies:
            metrics["analogies"] = evaluate_analogies(wv, e.analogies, **kw).to_dict()
        if e.similarity:
            metrics["similarity"] = evaluate_similarity(wv, e.similarity, **kw).to_dict()
        return metrics

    def _figure_words(self, wv) -> list[str]:
        e = self.config.eval
        if e.words is not None:
            return list(e.words)
        if self.config.data.name == "world":
            words = [w for ws in world_categories().values() for w in ws if w in wv]
            if len(words) >= 2:
                return words
        return list(wv.words[: e.n_words])

    def figures(self, model: SkipGram) -> dict:
        from xmodal.viz.projection import plot_projection

        wv = model.word_vectors()
        words = self._figure_words(wv)
        fig = plot_projection(wv, words, method=self.config.eval.method, seed=self.config.seed)
        lines = [f"{w}: " + ", ".join(f"{n} {c:.3f}" for n, c in wv.most_similar(w, topn=5))
                 for w in words]  # fmt: skip
        return {"projection": fig, "neighbours.txt": "\n".join(lines) + "\n"}

    def predict(self, model: SkipGram, inputs: Sequence[str], out_dir: Path, *, n: int) -> list:
        """The ``n`` nearest words of each input: a word, or ``"king - man + woman"``
        (3CosAdd; the expression's words left out)."""
        if not inputs:
            raise ParameterError("predict word2vec needs at least one word or expression")
        n = check_positive_int(n, "-n")
        wv = model.word_vectors()
        records = []
        for query in inputs:
            found = w2v.query_neighbours(wv, query, topn=n)
            neighbours = [{"word": w, "cosine": c} for w, c in found]
            text = f"{query}: " + ", ".join(f"{w} {c:.3f}" for w, c in found)
            records.append({"input": query, "text": text, "neighbours": neighbours, "files": []})
        return records
