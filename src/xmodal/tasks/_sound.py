"""What the tasks on sound with its frame share (``soundnet``, ``scene-sound``): the data
section and the two sources, the world's scenes with their sound and an ``av-manifest``
folder of frames and sounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch.utils.data import DataLoader, Dataset, Subset

from xmodal.engine.base import ImageDataConfig, integer, number
from xmodal.errors import ParameterError

__all__ = ["SoundData", "SoundDataConfig"]


@dataclass
class SoundDataConfig(ImageDataConfig):
    """The world's scenes with their sound, ``clip_seconds`` long (``xmodal.data.sounds``);
    or an ``av-manifest`` folder ``root`` of frames and sounds (``xmodal.data.AVManifest``,
    its clips cut or padded to ``clip_seconds``)."""

    sources: ClassVar[tuple[str, ...]] = ("world", "av-manifest")

    root: str | None = None
    clip_seconds: float = number(1.0, positive=True)
    train_size: int = integer(8000)
    batch_size: int = integer(64)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name == "av-manifest" and not self.root:
            raise ParameterError("data.name=av-manifest needs data.root, the manifest's folder")


class SoundData:
    """The data sources and loaders of a task whose ``data`` is a :class:`SoundDataConfig`
    (a mixin of :class:`~xmodal.engine.task.Task`)."""

    def train_dataloader(self) -> DataLoader:
        return self.train_loader(self.data("train"), drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def _loader(self, split: str, size: int | None = None) -> DataLoader:
        """The first ``size`` (None: all) clips of ``split`` in order, in batches of
        ``eval.batch_size``: what evaluation reads."""
        data = self.data(split)
        if size is not None and size < len(data):
            data = Subset(data, range(size))
        return DataLoader(data, batch_size=self.config.eval.batch_size,
                          num_workers=self.config.data.num_workers)  # fmt: skip

    def world_data(self, split: str) -> Dataset:
        from xmodal.data.sounds import SoundScenes

        return SoundScenes(self.world, split, size=self.config.data.size(split))

    def av_manifest_data(self, split: str) -> Dataset:
        from xmodal.data.avmanifest import AVManifest

        d, rate = self.config.data, self.world.config.sample_rate
        return AVManifest(d.root, split, image_size=d.image_size, sample_rate=rate,
                          seconds=d.clip_seconds)  # fmt: skip
