"""SoundNet (Aytar, Vondrick & Torralba, 2016): a sound network taught by a vision network.

The student is a raw-waveform 1-D CNN (:class:`~xmodal.audio.encoders.SoundNet`) with two
heads, objects and places, each a 1-D convolution over the encoder's steps (the
reference's conv8, split in two); a clip's logits are the mean over its valid steps. The
teacher is a frozen visual network that gives object and place posteriors for the frame
the sound came with; the student learns to match them (:func:`~xmodal.nn.losses.
distillation_loss`, KL from teacher to student) and never sees a label.

On the world the teacher is the world-pretrained backbone (:class:`~xmodal.vision.backbone.
BackboneModel`) read by :func:`backbone_posteriors`: its place head, and its cell heads
summed over the map into a distribution over (colour, shape) objects (by area), the world's
counterpart of ImageNet's object classes (a sound's pitch is its object's colour and its
timbre the shape, :mod:`xmodal.world.sound`).

Example::

    student = SoundNetStudent(create_encoder("soundnet", num_layers=5), n_objects=30, n_places=8)
    out = student(waves)                       # {"objects": (B, 30), "places": (B, 8)} logits
    teacher = backbone_posteriors(backbone(images))
    loss = distillation_loss(out["places"], teacher["places"]) + ...
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from xmodal._checks import check_positive_int, check_positive_number
from xmodal.errors import ParameterError

__all__ = [
    "HEADS",
    "SoundNetStudent",
    "TorchvisionTeacher",
    "backbone_posteriors",
    "fold_accuracy",
    "layer_features",
    "layer_names",
    "mfcc_statistics",
    "object_classes",
    "teacher_posteriors",
    "torchvision_classifier",
]

HEADS = ("objects", "places")


def object_classes(colours, shapes) -> list[str]:
    """The object classes of the world's teacher: ``"colour shape"`` for every pair, in
    colour-major order (the order of :func:`backbone_posteriors`)."""
    return [f"{c} {s}" for c in colours for s in shapes]


class SoundNetStudent(nn.Module):
    """An :class:`~xmodal.audio.encoders.AudioEncoder` with an object and a place head
    (``n_places=None``: objects alone, for a teacher without a place classifier).

    ``forward(wave (B, T), lengths=None) -> {"objects": (B, n_objects), "places": (B,
    n_places)}``: logits, each the mean over the encoder's valid steps of a 1x1
    convolution of its features (padding never changes a clip's logits, as the encoder's
    ``forward_head`` averages).
    """

    def __init__(self, encoder: nn.Module, n_objects: int, n_places: int | None) -> None:
        super().__init__()
        channels = encoder.feature_info.channels
        self.encoder = encoder
        heads = {"objects": nn.Conv1d(channels, check_positive_int(n_objects, "n_objects"), 1)}
        if n_places is not None:
            heads["places"] = nn.Conv1d(channels, check_positive_int(n_places, "n_places"), 1)
        self.heads = nn.ModuleDict(heads)

    def forward(self, wave: torch.Tensor, lengths=None) -> dict[str, torch.Tensor]:
        features = self.encoder.forward_features(wave, lengths)  # (B, C, T'), padding zeroed
        if lengths is None:
            return {name: head(features).mean(-1) for name, head in self.heads.items()}
        steps = self.encoder.output_lengths(torch.as_tensor(lengths)).to(features.device)
        valid = torch.arange(features.shape[-1], device=features.device) < steps[:, None]
        return {
            name: (head(features) * valid[:, None]).sum(-1) / steps[:, None].clamp_min(1)
            for name, head in self.heads.items()
        }


class TorchvisionTeacher(nn.Module):
    """SoundNet's teacher on real frames: a torchvision classifier for the objects
    (ImageNet's, in the paper) and optionally a second one for the places (the paper's
    Places CNN). ``forward(images (B, 3, H, W) in [0, 1]) -> {"objects": logits, "places":
    logits}``, each network fed the images normalised by ImageNet's mean and standard
    deviation, as torchvision's classifiers expect."""

    def __init__(self, objects: nn.Module, places: nn.Module | None = None) -> None:
        super().__init__()
        self.objects = objects
        self.places = places
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images - self.mean) / self.std
        out = {"objects": self.objects(x)}
        if self.places is not None:
            out["places"] = self.places(x)
        return out


def torchvision_classifier(arch: str, weights: str | None = None, num_classes: int | None = None):
    """``(model, num_classes)``: the torchvision classification model ``arch`` with the
    state dict of the file ``weights`` (safetensors, or a ``.pth``/``.pt`` read with
    ``torch.load(weights_only=True)``, which unpickles no code), its number of classes
    read from its last 2-D weight; without ``weights``, ``num_classes`` untrained classes
    (the run's own safetensors then bring the weights). A DataError names a file that is
    missing or does not fit ``arch``."""
    from pathlib import Path

    from torchvision.models import get_model, list_models

    from xmodal.errors import DataError

    if arch not in list_models():
        raise ParameterError(f"unknown torchvision model {arch!r}; e.g. resnet18, resnet50")
    state = None
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise DataError(f"teacher weights {str(path)!r} do not exist")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:
                raise DataError(f"cannot read teacher weights {str(path)!r}: {err}") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        mats = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
        if not mats:
            raise DataError(f"teacher weights {str(path)!r} hold no classifier layer")
        num_classes = int(mats[-1].shape[0])
    model = get_model(
        arch, weights=None, num_classes=check_positive_int(num_classes, "num_classes")
    )
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise DataError(f"teacher weights {str(weights)!r} do not fit {arch}: {err}") from None
    return model, num_classes


def teacher_posteriors(teacher: nn.Module, images: torch.Tensor, temperature: float = 1.0):
    """The posteriors of either teacher: :func:`backbone_posteriors` of a world backbone
    (a :class:`~xmodal.vision.backbone.BackboneModel`), or the softmax of each of a
    :class:`TorchvisionTeacher`'s classifiers, softened by ``temperature``."""
    out = teacher(images)
    if isinstance(teacher, TorchvisionTeacher):
        t = check_positive_number(temperature, "temperature")
        return {name: (logits / t).softmax(1) for name, logits in out.items()}
    return backbone_posteriors(out, temperature)


def backbone_posteriors(
    out: Mapping[str, torch.Tensor], temperature: float = 1.0
) -> dict[str, torch.Tensor]:
    """The teacher's posteriors from a :class:`~xmodal.vision.backbone.BackboneModel`'s
    output (``{"shape": (B, S + 1, h, w), "colour": (B, C + 1, h, w), ..., "place": (B,
    P)}``, class 0 of a cell head "none"), softened by ``temperature``:

    - ``"places"`` ``(B, P)``: the softmax of the place logits;
    - ``"objects"`` ``(B, C * S)``: over the cells, ``p(object) p(colour | object) p(shape
      | object)`` summed and normalised: the share of the image's object area (cells)
      that each (colour, shape) pair covers, as the teacher sees it, so a large object
      weighs more than a small one (colour-major, as :func:`object_classes`).
    """
    temperature = check_positive_number(temperature, "temperature")
    missing = {"shape", "colour", "place"} - set(out)
    if missing:
        raise ParameterError(f"the teacher's output lacks {sorted(missing)}. Found {sorted(out)}")
    shape = (out["shape"] / temperature).softmax(1)  # (B, S + 1, h, w)
    colour = (out["colour"] / temperature).softmax(1)
    present = 1.0 - shape[:, 0]  # (B, h, w): an object under the cell
    colour_given = colour[:, 1:] / colour[:, 1:].sum(1, keepdim=True).clamp_min(1e-12)
    shape_given = shape[:, 1:] / shape[:, 1:].sum(1, keepdim=True).clamp_min(1e-12)
    pairs = torch.einsum("bhw,bchw,bshw->bcs", present, colour_given, shape_given).flatten(1)
    objects = pairs / pairs.sum(1, keepdim=True).clamp_min(1e-12)
    return {"objects": objects, "places": (out["place"] / temperature).softmax(1)}


# ----------------------------------------------------------------------------- transfer


def layer_names(student: SoundNetStudent) -> list[str]:
    """The name of each encoder block's output, as the reference names them: ``pool1``,
    ``pool2``, ``conv3``, ``conv4``, ``pool5``, ``conv6`` ... (a block that ends in a
    max-pool is named by it)."""
    names = []
    for k, block in enumerate(student.encoder.body, start=1):
        pooled = isinstance(block[-1], nn.MaxPool1d)
        names.append(f"{'pool' if pooled else 'conv'}{k}")
    return names


@torch.no_grad()
def layer_features(student: SoundNetStudent, wave: torch.Tensor) -> dict[str, torch.Tensor]:
    """``wave (B, T)`` → for each encoder layer (:func:`layer_names`), its features
    averaged over time ``(B, C_layer)``, and each head's logits (``objects``, ``places``):
    what a linear classifier reads in SoundNet's transfer experiments. Clips of one
    length (no padding)."""
    x = student.encoder._prepare(wave, None)[0].unsqueeze(1)  # (B, 1, T), checked
    out = {}
    for name, block in zip(layer_names(student), student.encoder.body, strict=True):
        x = block(x)
        out[name] = x.mean(-1)
    for name, head in student.heads.items():
        out[name] = head(x).mean(-1)
    return out


def fold_accuracy(features, targets, folds) -> tuple[float, list[float]]:
    """ESC-50's protocol with a linear classifier: for each fold, standardise the features
    of the other folds, fit a multinomial logistic regression (scikit-learn; the paper
    trains a linear SVM) on them and score it on the fold. ``(mean accuracy, per fold)``,
    in percent."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = torch.as_tensor(features).double().numpy()
    y = torch.as_tensor(targets).numpy()
    f = torch.as_tensor(folds).numpy()
    if not (len(x) == len(y) == len(f)) or x.ndim != 2:
        raise ParameterError(
            f"features (N, D), targets (N,) and folds (N,) must agree. Found {x.shape}, "
            f"{y.shape}, {f.shape}"
        )
    scores = []
    for fold in sorted(set(f.tolist())):
        train, test = f != fold, f == fold
        if not train.any():
            raise ParameterError(f"fold {fold} is the only fold: nothing to train on")
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(x[train], y[train])
        scores.append(100.0 * float((probe.predict(x[test]) == y[test]).mean()))
    return sum(scores) / len(scores), scores


def mfcc_statistics(wave: torch.Tensor, sample_rate: int, n_mfcc: int = 20) -> torch.Tensor:
    """The classic hand-made clip features (ESC-50's baseline): the mean and the standard
    deviation over frames of ``n_mfcc`` MFCCs (:class:`xmodal.audio.transforms.MFCC`,
    25 ms Hamming windows every 10 ms) → ``(B, 2 * n_mfcc)``."""
    from xmodal.audio.transforms import MFCC

    mfcc = MFCC(sr=sample_rate, n_mfcc=n_mfcc, n_fft=512, win_length=int(0.025 * sample_rate),
                hop_length=int(0.010 * sample_rate))  # fmt: skip
    coeffs = mfcc(torch.as_tensor(wave).double())  # (B, n_mfcc, frames)
    return torch.cat([coeffs.mean(-1), coeffs.std(-1)], dim=1)
