"""Image encoders behind one interface, as in timm.

Every encoder is an :class:`ImageEncoder`:

- ``forward_features(images)``: ``(B, 3, H, W)`` → spatial map ``(B, C, H', W')``, for
  attention (Show, Attend and Tell, VQA, sound localization);
- ``forward_head(features)``: ``(B, C, H', W')`` → global vector ``(B, C)`` (mean over
  locations), for matching and Show and Tell;
- ``forward(images) == forward_head(forward_features(images))``;
- ``feature_info``: :class:`FeatureInfo` with ``channels`` (C) and ``stride`` (H / H').

Images are ``float`` in ``[0, 1]`` or ``uint8`` in ``[0, 255]`` (divided by 255); the
encoder standardises them itself with its :class:`Normalize` buffers (ImageNet mean/std
for the ResNets, mean 0.5 / std 0.5 for ``small-cnn``), so callers never normalise.

Encoders are made by name::

    >>> enc = create_encoder("small-cnn", channels=64)
    >>> enc(torch.rand(2, 3, 64, 64)).shape
    torch.Size([2, 64])
    >>> list_encoders()
    ['resnet18', 'resnet34', 'resnet50', 'small-cnn']

Nothing is downloaded unless ``pretrained=True`` is asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from xmodal._checks import check_bool, check_choice, check_positive_int
from xmodal._registry import Registry
from xmodal.errors import DataError, ParameterError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FactoredCNN",
    "FeatureInfo",
    "ImageEncoder",
    "Normalize",
    "ResNetEncoder",
    "SmallCNN",
    "create_encoder",
    "list_encoders",
    "register_encoder",
    "WIDTH_ENCODERS",
    "stream_channels",
    "width_kwargs",
]

GLOBAL_POOLS = ("avg", "max")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class FeatureInfo:
    """What ``forward_features`` returns: ``channels`` C and ``stride`` H / H' (pixels)."""

    channels: int
    stride: int


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, with mean and std kept as buffers (moved by ``.to``).

    Input ``(B, 3, H, W)`` in ``[0, 1]``; output the same shape.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ParameterError(f"std must be > 0 and match mean. Found: mean={mean}, std={std}")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ImageEncoder(nn.Module):
    """Base of every image encoder; subclasses set ``feature_info`` and implement ``_features``.

    ``_features`` receives images already checked, scaled to ``[0, 1]`` and standardised.
    """

    feature_info: FeatureInfo

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], normalize: bool = True,
                 global_pool: str = "avg"):  # fmt: skip
        super().__init__()
        self.normalize = Normalize(mean, std) if check_bool(normalize, "normalize") else None
        self.global_pool = check_choice(global_pool, "global_pool", GLOBAL_POOLS)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _prepare(self, images) -> torch.Tensor:
        """Check ``images`` and return them as standardised floats in the module's dtype."""
        if not isinstance(images, torch.Tensor):
            raise ParameterError(
                f"images must be a torch.Tensor (B, 3, H, W). Found: {type(images).__name__}"
            )
        if images.ndim != 4 or images.shape[1] != 3:
            raise ParameterError(
                f"images must have shape (B, 3, H, W). Found shape {tuple(images.shape)}"
            )
        if images.numel() == 0:
            raise ParameterError(f"images is empty. Found shape {tuple(images.shape)}")
        dtype = next(self.parameters()).dtype
        if images.dtype == torch.uint8:
            x = images.to(dtype) / 255.0
        elif images.is_floating_point():
            if not bool(torch.isfinite(images).all()):
                raise ParameterError("images must be finite. Found NaN or Inf values")
            x = images.to(dtype)
        else:
            raise ParameterError(
                f"images must be float in [0, 1] or uint8 in [0, 255]. Found dtype {images.dtype}"
            )
        return self.normalize(x) if self.normalize is not None else x

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in [0, 1] or uint8 → feature map ``(B, C, H / s, W / s)``."""
        return self._features(self._prepare(images))

    def forward_pyramid(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """``(B, 3, H, W)`` → ``{stride: map}``, the maps of the encoder's stages, the last
        one :meth:`forward_features`'s (for heads that need finer maps: a localization
        map at stride 4). Encoders without stages say so."""
        raise ParameterError(
            f"{type(self).__name__} gives its final map only (forward_features); the "
            "encoders with stage maps are small-cnn and factored-cnn"
        )

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature map ``(B, C, H', W')`` → global vector ``(B, C)``: the mean over
        locations (``global_pool="avg"``) or the maximum (``"max"``)."""
        c = self.feature_info.channels
        if not isinstance(features, torch.Tensor) or features.ndim != 4 or features.shape[1] != c:
            found = tuple(features.shape) if isinstance(features, torch.Tensor) else features
            raise ParameterError(f"features must have shape (B, {c}, H', W'). Found: {found}")
        if self.global_pool == "max":
            return features.amax(dim=(-2, -1))
        return features.mean(dim=(-2, -1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → ``(B, C)``."""
        return self.forward_head(self.forward_features(images))


# --------------------------------------------------------------------------- registry

_ENCODERS = Registry("encoder")
# Decorator: make ``fn(**kwargs) -> ImageEncoder`` (a function or a class) available as
# ``create_encoder(name, **kwargs)``.
register_encoder = _ENCODERS.register


def list_encoders() -> list[str]:
    """Names :func:`create_encoder` accepts, sorted."""
    return _ENCODERS.names()


def create_encoder(name: str, **kwargs) -> ImageEncoder:
    """Build the encoder registered as ``name`` with its keyword arguments.

    >>> create_encoder("resnet18", output_stride=16).feature_info
    FeatureInfo(channels=256, stride=16)
    """
    return _ENCODERS.create(name, **kwargs)


# --------------------------------------------------------------------------- small CNN


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(ImageEncoder):
    """Four conv-BN-ReLU blocks sized for the 64x64 world: stride 8, so 64x64 → 8x8.

    Widths ``channels/4, channels/2, channels, channels``; the first three blocks halve the
    resolution. ~0.24 M parameters at ``channels=128``; fast on a CPU.
    Input is standardised with mean 0.5 and std 0.5 (``[0, 1]`` → ``[-1, 1]``).
    """

    def __init__(self, *, channels: int = 128, normalize: bool = True,
                 global_pool: str = "avg") -> None:  # fmt: skip
        super().__init__((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), normalize, global_pool)
        c = check_positive_int(channels, "channels", minimum=4)
        widths = (c // 4, c // 2, c, c)
        strides = (2, 2, 2, 1)
        blocks, c_in = [], 3
        for width, stride in zip(widths, strides, strict=True):
            blocks.append(_conv_block(c_in, width, stride))
            c_in = width
        self.body = nn.Sequential(*blocks)
        self.feature_info = FeatureInfo(channels=c, stride=8)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, C, H/8, W/8)

    def _pyramid(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        maps, stride = {}, 1
        for block in self.body:
            x = block(x)
            stride *= block[0].stride[0]
            maps[stride] = x  # a stride-1 block replaces its input's map
        return maps

    def forward_pyramid(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """``{2: (B, C/4, H/2, W/2), 4: (B, C/2, H/4, W/4), 8: (B, C, H/8, W/8)}``."""
        return self._pyramid(self._prepare(images))


@register_encoder("small-cnn")
def small_cnn(**kwargs) -> SmallCNN:
    return SmallCNN(**kwargs)


class FactoredCNN(ImageEncoder):
    """Two :class:`SmallCNN` streams of ``channels / 2`` each, their maps stacked: ``colour``
    sees the image, ``shape`` a grey projection of it, ``w . (r, g, b)`` with ``w`` drawn
    per image from Dirichlet(1, 1, 1) in training and ``(1/3, 1/3, 1/3)`` in eval. The
    shape stream is colour-blind by construction: no grey level stands for one colour, so
    it cannot learn that red things are never circles (on the compositional world it reads
    the shape of a held-out pair's object 98.6% right, an RGB stream 16.2%: docs/backbone.md).

    ``streams``: the channels of each, ``{"colour": (0, C/2), "shape": (C/2, C)}``; heads
    that read one attribute (:class:`~xmodal.vision.backbone.BackboneModel`,
    :class:`~xmodal.translation.ShowAttendTell`'s ``word_attributes``) read its stream.
    """

    def __init__(self, *, channels: int = 128, normalize: bool = True,
                 global_pool: str = "avg") -> None:  # fmt: skip
        super().__init__((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), normalize, global_pool)
        c = check_positive_int(channels, "channels", minimum=8)
        if c % 2:
            raise ParameterError(f"channels must be even (two streams). Found: {c}")
        self.colour = SmallCNN(channels=c // 2, normalize=False)
        self.shape = SmallCNN(channels=c // 2, normalize=False)
        self.streams = {"colour": (0, c // 2), "shape": (c // 2, c)}
        self.feature_info = FeatureInfo(channels=c, stride=8)

    def _grey(self, x: torch.Tensor) -> torch.Tensor:
        """The shape stream's input: ``w . (r, g, b)`` on three channels (see the class)."""
        if self.training:
            w = torch.distributions.Dirichlet(x.new_ones(3)).sample((x.shape[0],))
        else:
            w = x.new_full((x.shape[0], 3), 1 / 3)
        return (x * w[:, :, None, None]).sum(1, keepdim=True).expand(-1, 3, -1, -1)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.colour._features(x), self.shape._features(self._grey(x))], dim=1)

    def forward_pyramid(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Each stage's maps of the two streams, stacked (as :meth:`forward_features`)."""
        x = self._prepare(images)
        colour, shape = self.colour._pyramid(x), self.shape._pyramid(self._grey(x))
        return {s: torch.cat([colour[s], shape[s]], dim=1) for s in colour}


@register_encoder("factored-cnn")
def factored_cnn(**kwargs) -> FactoredCNN:
    return FactoredCNN(**kwargs)


WIDTH_ENCODERS = ("small-cnn", "factored-cnn")  # the encoders whose width is ``channels``


def width_kwargs(name: str, channels: int) -> dict:
    """``create_encoder``'s keyword arguments for a task's ``model.encoder`` and
    ``model.channels``: the width where the encoder has one (the ResNets have not)."""
    return {"channels": channels} if name in WIDTH_ENCODERS else {}


def stream_channels(encoder: nn.Module, attribute: str) -> tuple[int, int]:
    """The channels ``(start, stop)`` of the map that a head for ``attribute`` reads: its
    stream's on a :class:`FactoredCNN` (``shape``; ``colour`` for every other attribute),
    all of them otherwise."""
    streams = getattr(encoder, "streams", None)
    if not streams:
        return 0, encoder.feature_info.channels
    return streams.get(attribute, streams["colour"])


# --------------------------------------------------------------------------- ResNets

# name -> (torchvision builder, weights enum name, channels of layer3, channels of layer4)
_RESNETS = {
    "resnet18": ("resnet18", "ResNet18_Weights", 256, 512),
    "resnet34": ("resnet34", "ResNet34_Weights", 256, 512),
    "resnet50": ("resnet50", "ResNet50_Weights", 1024, 2048),
}


def _fetch_state_dict(url: str) -> dict:
    """Download (or read from ``$TORCH_HOME/hub/checkpoints``) a state dict, without pickle."""
    return torch.hub.load_state_dict_from_url(
        url, progress=False, check_hash=True, weights_only=True
    )


class ResNetEncoder(ImageEncoder):
    """A torchvision ResNet without its pooling and classifier.

    ``output_stride=32`` (default) returns layer4's map: 224x224 → 7x7. ``output_stride=16``
    stops after layer3 (layer4 is dropped, not dilated), which keeps a usable map on small
    images: 64x64 → 4x4, with 256 channels (1024 for resnet50) instead of 512 (2048).

    ``pretrained=True`` loads torchvision's ImageNet weights; that needs the internet the
    first time (they are cached under ``$TORCH_HOME``). The default, ``pretrained=False``,
    starts from random weights and downloads nothing. Input is standardised with ImageNet
    mean/std, as the pretrained weights expect.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        *,
        pretrained: bool = False,
        output_stride: int = 32,
        normalize: bool = True,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(IMAGENET_MEAN, IMAGENET_STD, normalize, global_pool)
        import torchvision.models as tvm  # lazy: only the ResNets need torchvision

        check_choice(arch, "arch", list(_RESNETS))
        pretrained = check_bool(pretrained, "pretrained")
        check_choice(output_stride, "output_stride", (16, 32))
        builder, weights_name, c3, c4 = _RESNETS[arch]
        net = getattr(tvm, builder)(weights=None)
        if pretrained:
            weights = getattr(tvm, weights_name).IMAGENET1K_V1
            try:
                state = _fetch_state_dict(weights.url)
            except Exception as exc:  # network, disk, hash: all mean "no weights here"
                raise DataError(
                    f"pretrained weights for {arch} could not be fetched from {weights.url} "
                    f"({type(exc).__name__}: {exc}). Either connect to the internet once, or put "
                    f"the file in $TORCH_HOME/hub/checkpoints (set TORCH_HOME to a folder that "
                    f"holds it), or use pretrained=False."
                ) from exc
            net.load_state_dict(state)
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]
        if output_stride == 32:
            names.append("layer4")
        self.body = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))
        self.arch = arch
        self.feature_info = FeatureInfo(
            channels=c4 if output_stride == 32 else c3, stride=output_stride
        )

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, C, H/stride, W/stride)


def _resnet_factory(arch: str) -> Callable[..., ResNetEncoder]:
    def make(**kwargs) -> ResNetEncoder:
        return ResNetEncoder(arch, **kwargs)

    make.__name__ = arch
    return make


for _arch in _RESNETS:
    register_encoder(_arch)(_resnet_factory(_arch))
