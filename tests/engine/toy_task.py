"""A toy task for the engine tests: regression of a noisy linear target with a small MLP.

Everything is generated in ``setup`` from the seed; dropout makes training depend on the
global RNG, so a resume that did not restore it would show in the metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from xmodal.engine import Task, TrainerConfig, seeded_loader
from xmodal.engine.options import option
from xmodal.errors import DataError, ParameterError


def _trainer() -> TrainerConfig:
    return TrainerConfig(max_epochs=2, accelerator="cpu", devices=1, enable_progress_bar=False,
                         enable_model_summary=False, log_every_n_steps=1,
                         checkpoint_every_n_steps=0)  # fmt: skip


@dataclass
class ModelConfig:
    hidden: int = 16
    dropout: float = 0.2


@dataclass
class ToyConfig:
    seed: int = 0
    n_features: int = 4
    n_train: int = 64
    n_eval: int = 32
    batch_size: int = 8
    lr: float = 0.05
    model: ModelConfig = field(default_factory=ModelConfig)
    eval_splits: tuple[str, ...] = ("val", "test")
    interrupt_at_step: int = -1  # raise KeyboardInterrupt in that training step (0-based)
    interrupt_in_validation: bool = False
    tags: dict[str, int] = field(default_factory=dict)
    trainer: TrainerConfig = field(default_factory=_trainer)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1. Found: {self.batch_size}")


class _Pairs(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


class ToyTask(Task):
    name = "toy"
    family = "representations"
    summary = "Toy regression (engine tests)"
    default_data = "random"
    Config = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.steps = 0

    def artifacts(self) -> list[str]:
        return ["stats.json"]

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        offset = {"train": 0, "val": 1, "test": 2}[split]
        gen = torch.Generator().manual_seed(1000 * self.config.seed + offset)
        n = self.config.n_train if split == "train" else self.config.n_eval
        x = torch.randn(n, self.config.n_features, generator=gen) * 3 + 1
        w = torch.arange(1, self.config.n_features + 1, dtype=torch.float32)
        y = x @ w + 0.1 * torch.randn(n, generator=gen)
        return x, y

    def setup(self, run_dir: Path, stage: str) -> None:
        stats = Path(run_dir) / "stats.json"
        if stage == "fit":
            x, _ = self._split("train")
            self.mean, self.std = x.mean(0), x.std(0)
            stats.write_text(json.dumps({"mean": self.mean.tolist(), "std": self.std.tolist()}))
        else:
            if not stats.is_file():
                raise DataError(f"{stats} is missing")
            data = json.loads(stats.read_text())
            self.mean, self.std = torch.tensor(data["mean"]), torch.tensor(data["std"])

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    @staticmethod
    def _run(model, x: torch.Tensor) -> torch.Tensor:
        # The engine may hand over a model on a GPU: inputs go where its weights are.
        device = next(model.parameters()).device
        return model(x.to(device)).squeeze(-1).float().cpu()

    def train_dataloader(self):
        x, y = self._split("train")
        return seeded_loader(_Pairs(self._norm(x), y), batch_size=self.config.batch_size,
                             shuffle=True, seed=self.config.seed)  # fmt: skip

    def val_dataloader(self):
        x, y = self._split("val")
        return seeded_loader(_Pairs(self._norm(x), y), batch_size=16, shuffle=False,
                             seed=self.config.seed)  # fmt: skip

    def build_model(self) -> nn.Module:
        c = self.config
        torch.manual_seed(c.seed)
        return nn.Sequential(
            nn.Linear(c.n_features, c.model.hidden),
            nn.Tanh(),
            nn.Dropout(c.model.dropout),
            nn.Linear(c.model.hidden, 1),
        )

    def configure_optimizers(self, model: nn.Module):
        opt = torch.optim.Adam(model.parameters(), lr=self.config.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
        return {"optimizer": opt, "lr_scheduler": sched}

    def training_step(self, model, batch):
        if self.steps == self.config.interrupt_at_step:
            raise KeyboardInterrupt
        self.steps += 1
        pred = model(batch["x"]).squeeze(-1)
        loss = nn.functional.mse_loss(pred, batch["y"])
        return loss, {"mae": (pred - batch["y"]).abs().mean().detach()}

    def validation_step(self, model, batch):
        if self.config.interrupt_in_validation:
            raise KeyboardInterrupt
        pred = model(batch["x"]).squeeze(-1)
        return {"mse": nn.functional.mse_loss(pred, batch["y"]).item()}

    def evaluate(self, model, split):
        x, y = self._split(split)
        pred = self._run(model, self._norm(x))
        return {"mse": nn.functional.mse_loss(pred, y).item(), "n": len(y)}

    def figures(self, model):
        from matplotlib.figure import Figure

        x, y = self._split("test")
        pred = self._run(model, self._norm(x))
        fig = Figure(figsize=(3, 3))
        ax = fig.add_subplot()
        ax.scatter(y.numpy(), pred.numpy(), s=4)
        ax.set_xlabel("target")
        ax.set_ylabel("prediction")
        return {"pred-vs-target": fig}

    @dataclass
    class PredictOptions:
        extra: list[str] | None = option(None, "one more input", metavar="X")
        scale: float = option(1.0, "multiply the outputs")

    def predict(self, model, inputs, out_dir, *, extra, scale):
        records = []
        for i, text in enumerate([*inputs, *(extra or [])]):
            try:
                x = torch.tensor([float(v) for v in text.split(",")])
            except ValueError:
                raise ParameterError(f"input {text!r} is not comma-separated numbers") from None
            y = scale * self._run(model, self._norm(x)[None]).item()
            path = Path(out_dir) / f"prediction-{i}.txt"
            path.write_text(f"{y}\n")
            records.append({"input": text, "text": f"{y:.4f}", "value": y, "files": [str(path)]})
        return records
