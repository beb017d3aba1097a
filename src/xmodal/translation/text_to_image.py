"""Text-to-image synthesis: the conditional GAN of Reed et al. 2016 (GAN-INT-CLS).

A sentence is encoded to a fixed vector ``t`` (a :class:`~xmodal.text.encoders.GRUTextEncoder`),
projected by a linear layer and a leaky ReLU, and concatenated with Gaussian noise ``z``,
so one sentence gives many images. A DCGAN generator upsamples ``[z, proj(t)]`` from 4x4
to the image size. The discriminator encodes the image to a 4x4 map, joins the projected
sentence vector replicated over the 4x4 locations and judges *this image under this
sentence*: real or fake.

Training (:func:`gan_int_cls_step`, one step of both networks) uses

- the matching-aware loss (**CLS**): the discriminator sees real images with the right
  text (real), real images with the wrong text (fake) and generated images with the right
  text (fake) — :func:`discriminator_loss`;
- text-embedding interpolation (**INT**): the generator is also judged on sentences
  ``beta * t1 + (1 - beta) * t2`` that no image has — :func:`interpolate_texts`,
  :func:`generator_loss`.

Standard GAN stabilisers are options: the hinge loss in the same three roles
(``loss="hinge"``), a spectrally normalised discriminator (``d_norm="spectral"``),
nearest-neighbour upsampling + convolution in the generator (``upsample="nearest"``, no
checkerboard) and DiffAugment for the discriminator's inputs (:func:`diff_augment`).
TAC-GAN's auxiliary classifiers in the discriminator (``aux_classes``, :func:`aux_loss`)
ask the generator for the attributes its sentence names. The short fits around the GAN
(its pre-trainings, the judge of its images) are in :mod:`~xmodal.translation.
text_to_image_fit`, the metrics of its images in :mod:`~xmodal.translation.text_to_image_eval`.

Example::

    model = TextToImageGAN(len(vocab))
    tokens, lengths = vocab.encode_batch(["a large red star"] * 4)
    images = model.generate(tokens, lengths)                # (4, 3, 64, 64) in [0, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xmodal._checks import check_choice, check_positive_int, check_positive_number
from xmodal.errors import ParameterError
from xmodal.text.encoders import GRUTextEncoder

__all__ = [
    "AUGMENTS",
    "D_CONDS",
    "D_NORMS",
    "GAN_LOSSES",
    "UPSAMPLES",
    "Discriminator",
    "Generator",
    "TextToImageGAN",
    "aux_loss",
    "diff_augment",
    "discriminator_loss",
    "generator_loss",
    "interpolate_texts",
    "mismatched",
    "caption_grid_records",
    "discriminator_objective",
    "encode_caption",
    "encode_parts",
    "gan_int_cls_step",
    "generate_images",
    "generator_objective",
    "image_caption_loss",
    "wrong_indices",
]


UPSAMPLES = ("transposed", "nearest")  # the generator's doublings
D_NORMS = ("batch", "spectral")  # the discriminator's normalisation
D_CONDS = ("concat", "projection")  # how the discriminator meets the sentence
GAN_LOSSES = ("bce", "hinge")
AUGMENTS = ("none", "translation", "translation-cutout")  # DiffAugment policies


def _levels(image_size: int) -> int:
    """Doublings from the 4x4 map to ``image_size`` (64 -> 4); ParameterError unless
    ``image_size`` is 4 times a power of two, at least 16."""
    size = check_positive_int(image_size, "image_size", minimum=16)
    levels = (size // 4).bit_length() - 1
    if 4 * 2**levels != size:
        raise ParameterError(
            f"image_size must be 4 times a power of two (16, 32, 64, 128, ...). Found: {size}"
        )
    return levels


def _init_dcgan(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class TextProjection(nn.Sequential):
    """``(B, text_dim)`` → ``(B, proj_dim)``: linear then leaky ReLU (slope 0.2), as in
    Reed et al., before the sentence meets the noise or the image features."""

    def __init__(self, text_dim: int, proj_dim: int) -> None:
        super().__init__(nn.Linear(text_dim, proj_dim), nn.LeakyReLU(0.2, inplace=True))


class Generator(nn.Module):
    """DCGAN generator conditioned on a sentence vector.

    ``[z (B, noise_dim), proj(t) (B, proj_dim)]`` → 4x4 with ``ngf * 2**(levels-1)``
    channels (a transposed convolution from 1x1), then ``levels`` doublings (batch norm and
    ReLU after each but the last, which goes to 3 channels and tanh). 64x64: 4 → 8 → 16 →
    32 → 64. A doubling is a 4x4 transposed convolution of stride 2 (``upsample=
    "transposed"``, DCGAN's) or nearest-neighbour upsampling then a 3x3 convolution
    (``"nearest"``), which cannot leave the transposed convolution's checkerboard.

    ``forward(text (B, text_dim), noise (B, noise_dim))`` → ``(B, 3, S, S)`` in ``[0, 1]``.
    """

    def __init__(self, *, text_dim: int, proj_dim: int = 128, noise_dim: int = 100,
                 ngf: int = 64, image_size: int = 64,
                 upsample: str = "transposed") -> None:  # fmt: skip
        super().__init__()
        levels = _levels(image_size)
        self.noise_dim = check_positive_int(noise_dim, "noise_dim")
        ngf = check_positive_int(ngf, "ngf")
        self.upsample = check_choice(upsample, "upsample", UPSAMPLES)
        self.project = TextProjection(
            check_positive_int(text_dim, "text_dim"), check_positive_int(proj_dim, "proj_dim")
        )

        def double(c_in: int, c_out: int) -> list[nn.Module]:
            if self.upsample == "transposed":
                return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
            return [nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]  # fmt: skip

        width = ngf * 2 ** (levels - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(noise_dim + proj_dim, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(levels - 1):
            layers += [*double(width, width // 2), nn.BatchNorm2d(width // 2),
                       nn.ReLU(inplace=True)]  # fmt: skip
            width //= 2
        layers += [*double(width, 3), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.image_size = image_size
        _init_dcgan(self)
        # Channels-last weights (hence activations): the same results, and on a CPU a
        # quarter less time for these narrow convolutions (oneDNN's preferred layout).
        self.to(memory_format=torch.channels_last)

    def forward(self, text: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = torch.cat([noise, self.project(text)], dim=1)  # (B, Z + P)
        x = self.net(x[:, :, None, None])  # (B, 3, S, S) in [-1, 1]
        return (x + 1) / 2


class Discriminator(nn.Module):
    """DCGAN discriminator that judges an image under a sentence.

    Image ``(B, 3, S, S)`` in ``[0, 1]`` → strided 4x4 convolutions with leaky ReLU →
    ``(B, ndf * 2**(levels-1), 4, 4)``; the projected sentence ``(B, proj_dim)`` is
    replicated over the 4x4 locations and concatenated; a 1x1 convolution mixes them and a
    4x4 convolution gives one logit. ``norm="batch"`` (DCGAN's): batch norm after every
    convolution but the first and the last; ``norm="spectral"`` (Miyato et al. 2018):
    no batch norm, every convolution and linear layer spectrally normalised (its weight
    divided by its largest singular value, one power iteration per training forward), so
    D is 1-Lipschitz per layer and its gradients stay useful to the generator.

    ``cond="concat"`` (Reed et al.) joins image and sentence as above; ``cond=
    "projection"`` (Miyato & Koyama 2018) sums the 4x4 map over locations to ``phi (B, C)``
    and scores ``w . phi + <V proj(t), phi>``: the sentence enters as an inner product
    with the image features, which makes "does the image fit the sentence" the direct
    question.

    ``aux_classes`` (TAC-GAN, Dash et al. 2017, after AC-GAN, Odena et al. 2017): one
    linear classifier per attribute, e.g. ``(6, 5)`` for the world's colours and shapes
    (spectrally normalised with the rest when ``norm="spectral"``); ``()``, the default,
    has none. They read the encoder's map of stride ``aux_stride`` (4, 8, ... up to the
    final 4x4 map's, 16 at 64x64), **max**-pooled over locations: a small object is
    found where it is, which the sum over the final map (``phi``) learns far more slowly
    (docs/text2image.md).

    ``forward(images, text (B, text_dim))`` → ``(B,)`` logits (real under this sentence);
    with ``aux=True`` → ``(logits, [(B, k) for each k of aux_classes])``. The same in
    parts: :meth:`encode_image`, then :meth:`score` under one or more sentences and
    :meth:`classify`, so that one encoding of an image serves all of them.
    """

    def __init__(self, *, text_dim: int, proj_dim: int = 128, ndf: int = 64,
                 image_size: int = 64, norm: str = "batch",
                 cond: str = "concat", aux_classes: Sequence[int] = (),
                 aux_stride: int = 8) -> None:  # fmt: skip
        super().__init__()
        levels = _levels(image_size)
        ndf = check_positive_int(ndf, "ndf")
        aux_classes = tuple(check_positive_int(k, "aux_classes", minimum=2) for k in aux_classes)
        strides = [2 ** (k + 1) for k in range(levels)]  # of each block's output map
        if aux_stride not in strides:
            raise ParameterError(f"aux_stride must be one of {strides}. Found: {aux_stride!r}")
        self.norm = check_choice(norm, "norm", D_NORMS)
        self.cond = check_choice(cond, "cond", D_CONDS)
        self.project = TextProjection(
            check_positive_int(text_dim, "text_dim"), check_positive_int(proj_dim, "proj_dim")
        )

        def bn(c: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(c)] if self.norm == "batch" else []

        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
        width = ndf
        aux_width, self._aux_at = ndf, len(layers)  # the heads' map: encode[:_aux_at]
        for k in range(1, levels):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), *bn(width * 2),
                       nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
            width *= 2
            if strides[k] == aux_stride:
                aux_width, self._aux_at = width, len(layers)
        self.encode = nn.Sequential(*layers)
        if self.cond == "concat":
            self.judge = nn.Sequential(
                nn.Conv2d(width + proj_dim, width, 1, 1, 0, bias=False),
                *bn(width),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(width, 1, 4, 1, 0),
            )
        else:
            self.judge = nn.Linear(width, 1)  # w . phi (+ bias)
            self.embed = nn.Linear(proj_dim, width, bias=False)  # V
        # Built last, so the other layers' initial weights are those of a D without them.
        self.aux = nn.ModuleList(nn.Linear(aux_width, k) for k in aux_classes)
        self.aux_classes, self.aux_stride = aux_classes, aux_stride
        self.image_size = image_size
        _init_dcgan(self)
        if self.norm == "spectral":  # after the init: the parametrization reads the weight
            for m in list(self.modules()):
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(m)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` in [0, 1] → the 4x4 map ``(B, C, 4, 4)``."""
        return self.encode(images * 2 - 1)

    def encode_image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, S, S)`` in [0, 1] → ``(mid, h)``: the classifiers' map of stride
        ``aux_stride`` and the final 4x4 map. One encoding serves several sentences
        (:meth:`score`) and the classifiers (:meth:`classify`)."""
        mid = self.encode[: self._aux_at](images * 2 - 1)  # (B, C', S / aux_stride, ...)
        return mid, self.encode[self._aux_at :](mid)  # (B, C, 4, 4)

    def score(self, h: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The logits ``(B,)`` of the encoded images ``h`` (:meth:`encode_image`) under the
        sentences ``text (B, text_dim)``."""
        t = self.project(text)  # (B, P)
        if self.cond == "projection":
            phi = h.sum((2, 3))  # (B, C)
            return self.judge(phi).flatten() + (self.embed(t) * phi).sum(1)
        t = t[:, :, None, None].expand(-1, -1, *h.shape[-2:])  # (B, P, 4, 4)
        return self.judge(torch.cat([h, t], dim=1)).flatten()

    def classify(self, mid: torch.Tensor) -> list[torch.Tensor]:
        """The classifiers' logits ``[(B, k) for each k of aux_classes]`` of the map ``mid``
        (:meth:`encode_image`), max-pooled: each feature where it is strongest."""
        found = mid.amax((2, 3))  # (B, C')
        return [head(found) for head in self.aux]

    def forward(
        self, images: torch.Tensor, text: torch.Tensor, *, aux: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        mid, h = self.encode_image(images)
        logits = self.score(h, text)
        return (logits, self.classify(mid)) if aux else logits


class TextToImageGAN(nn.Module):
    """Sentence encoder, generator and discriminator of GAN-INT-CLS in one module.

    Args:
        vocab_size: words in the vocabulary.
        word_dim, hidden, text_dim: the :class:`~xmodal.text.encoders.GRUTextEncoder`'s word
            embedding, GRU (per direction, bidirectional, mean pooling) and output sizes.
        proj_dim: the sentence vector after the projection (Reed et al.: 128).
        noise_dim: the size of ``z``.
        ngf, ndf: the generator's and discriminator's base widths.
        image_size: side of the images, 4 times a power of two (64 for the world).
        upsample: the generator's doublings, ``"transposed"`` or ``"nearest"``.
        d_norm: the discriminator's normalisation, ``"batch"`` or ``"spectral"``.
        d_cond: how the discriminator meets the sentence, ``"concat"`` or ``"projection"``.
        aux_classes, aux_stride: the discriminator's auxiliary classifiers (TAC-GAN), one
            per attribute with that many classes (``()`` for none), and the stride of the
            map they max-pool.
        freeze_text: keep the sentence encoder fixed (no gradients, always in eval mode):
            for an encoder trained beforehand, e.g. by a joint embedding.
        text_encoder: another sentence encoder (``forward(tokens, lengths)`` →
            ``(B, text_dim)``), e.g. a trained retrieval model's ``text``; then
            ``word_dim`` and ``hidden`` are unused and ``text_dim`` must be its output size.

    ``encode_text(tokens, lengths)`` → ``(B, text_dim)`` unit vectors;
    ``generate(tokens, lengths, noise=None)`` → ``(B, 3, S, S)`` in ``[0, 1]``.
    """

    def __init__(self, vocab_size: int, *, word_dim: int = 64, hidden: int = 128,
                 text_dim: int = 128, proj_dim: int = 128, noise_dim: int = 100,
                 ngf: int = 64, ndf: int = 64, image_size: int = 64,
                 upsample: str = "transposed", d_norm: str = "batch",
                 d_cond: str = "concat", aux_classes: Sequence[int] = (),
                 aux_stride: int = 8, freeze_text: bool = False,
                 text_encoder: nn.Module | None = None) -> None:  # fmt: skip
        super().__init__()
        if text_encoder is None:
            text_encoder = GRUTextEncoder(vocab_size, word_dim=word_dim, hidden=hidden,
                                          embed_dim=text_dim)  # fmt: skip
        self.text = text_encoder
        self.freeze_text = bool(freeze_text)
        if self.freeze_text:  # a pre-trained sentence encoder, as Reed et al.'s
            self.text.requires_grad_(False)
        self.generator = Generator(text_dim=text_dim, proj_dim=proj_dim, noise_dim=noise_dim,
                                   ngf=ngf, image_size=image_size,
                                   upsample=upsample)  # fmt: skip
        self.discriminator = Discriminator(text_dim=text_dim, proj_dim=proj_dim, ndf=ndf,
                                           image_size=image_size, norm=d_norm,
                                           cond=d_cond, aux_classes=aux_classes,
                                           aux_stride=aux_stride)  # fmt: skip
        self.noise_dim = noise_dim
        self.image_size = image_size

    def train(self, mode: bool = True) -> TextToImageGAN:
        super().train(mode)
        if self.freeze_text:
            self.text.eval()
        return self

    def encode_text(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``tokens (B, L)``, ``lengths (B,)`` → ``(B, text_dim)``."""
        return self.text(tokens, lengths)

    def noise(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, noise_dim)`` standard Gaussian noise on the model's device (drawn on the
        CPU from ``generator`` when given, so a seed gives the same images anywhere)."""
        z = torch.randn(n, self.noise_dim, generator=generator)
        return z.to(next(self.parameters()).device)

    @torch.no_grad()
    def generate(self, tokens: torch.Tensor, lengths: torch.Tensor,
                 noise: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """Images for the sentences ``tokens`` (one per row): ``(B, 3, S, S)`` in [0, 1].

        ``noise`` ``(B, noise_dim)`` defaults to fresh Gaussian noise (from ``generator``).
        Runs in the module's current mode: call ``eval()`` first for batch-norm statistics.
        """
        text = self.encode_text(tokens, lengths)
        if noise is None:
            noise = self.noise(text.shape[0], generator=generator)
        if noise.shape != (text.shape[0], self.noise_dim):
            raise ParameterError(
                f"noise must have shape ({text.shape[0]}, {self.noise_dim}). "
                f"Found {tuple(noise.shape)}"
            )
        return self.generator(text, noise.to(text.device, text.dtype))


# ----------------------------------------------------------------------------- losses


def mismatched(n: int, *, shift: int = 1) -> torch.Tensor:
    """Indices pairing item ``i`` of a batch of ``n`` with item ``(i + shift) % n``: the
    "wrong text" of the matching-aware loss (every image gets another image's caption)."""
    n = check_positive_int(n, "n", minimum=2)
    return (torch.arange(n) + shift) % n


def interpolate_texts(text: torch.Tensor, *, beta: float = 0.5,
                      shift: int = 1) -> torch.Tensor:  # fmt: skip
    """``beta * t_i + (1 - beta) * t_{(i + shift) % B}`` for every row ``t_i`` of
    ``text (B, D)``: the interpolated sentences of GAN-INT, which no real image has."""
    beta = check_positive_number(beta, "beta", allow_zero=True)
    if beta > 1:
        raise ParameterError(f"beta must be in [0, 1]. Found: {beta}")
    return beta * text + (1 - beta) * text[mismatched(text.shape[0], shift=shift)]


def discriminator_loss(
    real_right: torch.Tensor, real_wrong: torch.Tensor, fake_right: torch.Tensor, *,
    loss: str = "bce",
) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """The matching-aware discriminator loss of GAN-CLS, on logits ``(B,)`` each.

    ``loss="bce"`` (Reed et al.): ``BCE(real_right, 1) + (BCE(real_wrong, 0) +
    BCE(fake_right, 0)) / 2`` — the negative of ``log D(x, t) + (log(1 - D(x, t')) +
    log(1 - D(G(z, t), t))) / 2``, each BCE a mean over the batch.

    ``loss="hinge"`` (SAGAN, BigGAN), the same three roles: ``relu(1 - real_right) +
    (relu(1 + real_wrong) + relu(1 + fake_right)) / 2``, each a mean over the batch.

    Returns ``(loss, parts)`` with the three terms and the mean probabilities
    ``sigmoid(logit)`` (for the hinge a monotone read-out of the scores, not a likelihood).
    """
    loss = check_choice(loss, "loss", GAN_LOSSES)
    if loss == "bce":
        rr = F.binary_cross_entropy_with_logits(real_right, torch.ones_like(real_right))
        rw = F.binary_cross_entropy_with_logits(real_wrong, torch.zeros_like(real_wrong))
        fr = F.binary_cross_entropy_with_logits(fake_right, torch.zeros_like(fake_right))
    else:
        rr = F.relu(1 - real_right).mean()
        rw = F.relu(1 + real_wrong).mean()
        fr = F.relu(1 + fake_right).mean()
    total = rr + (rw + fr) / 2
    parts = {
        "d_real_right": float(rr.detach()),
        "d_real_wrong": float(rw.detach()),
        "d_fake_right": float(fr.detach()),
        "p_real_right": float(torch.sigmoid(real_right.detach()).mean()),
        "p_real_wrong": float(torch.sigmoid(real_wrong.detach()).mean()),
        "p_fake_right": float(torch.sigmoid(fake_right.detach()).mean()),
    }
    return total, parts


def generator_loss(
    fake_right: torch.Tensor, fake_interp: torch.Tensor | None = None, *, loss: str = "bce"
) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's loss on discriminator logits of its images under their sentences:
    non-saturating ``BCE(fake_right, 1)`` (``loss="bce"``) or ``-mean(fake_right)``
    (``loss="hinge"``, the generator side of the hinge GAN); plus the same term for images
    of interpolated sentences (GAN-INT) when ``fake_interp`` is given. Returns
    ``(loss, parts)``."""
    loss = check_choice(loss, "loss", GAN_LOSSES)

    def term(logits: torch.Tensor) -> torch.Tensor:
        if loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return -logits.mean()

    g = term(fake_right)
    parts = {"g_fake": float(g.detach())}
    total = g
    if fake_interp is not None:
        gi = term(fake_interp)
        parts["g_interp"] = float(gi.detach())
        total = total + gi
    return total, parts


def aux_loss(logits: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], *,
             ignore_index: int = -1) -> tuple[torch.Tensor, list[float]]:  # fmt: skip
    """The auxiliary classification loss of TAC-GAN (Dash et al. 2017; AC-GAN, Odena et
    al. 2017): for each attribute, the cross entropy of ``logits[a]`` ``(B, k_a)`` against
    ``targets[a]`` ``(B,)`` averaged over the items whose target is not ``ignore_index``,
    summed over the attributes. An attribute no item names adds 0 (not NaN), so a caption
    that does not say the shape ("a yellow object") asks nothing of the shape.

    Returns ``(loss, per_attribute)``: the scalar loss and each attribute's term as a float.

    >>> loss, parts = aux_loss([torch.zeros(2, 4)], [torch.tensor([1, -1])])  # log 4
    >>> round(float(loss), 4), parts == [float(loss)]
    (1.3863, True)
    """
    if len(logits) != len(targets):
        raise ParameterError(
            f"aux_loss needs one target per head. Found: {len(logits)} heads, "
            f"{len(targets)} targets"
        )
    total = logits[0].new_zeros(()) if logits else torch.zeros(())
    parts = []
    for lg, y in zip(logits, targets, strict=True):
        named = y != ignore_index  # (B,)
        ce = F.cross_entropy(lg, y.clamp_min(0), reduction="none")  # (B,)
        term = (ce * named).sum() / named.sum().clamp_min(1)
        parts.append(float(term.detach()))
        total = total + term
    return total, parts


# ----------------------------------------------------------------------------- DiffAugment


def diff_augment(images: torch.Tensor, policy: str = "translation", *,
                 generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image
    the discriminator sees, real and generated alike, so D cannot memorise the training
    images and G still gets gradients through them. No colour augmentation: the colour
    is what the caption asks for.

    ``images`` ``(B, C, H, W)`` → the same shape. ``policy``:

    - ``"none"``: ``images`` itself;
    - ``"translation"``: each image shifted by up to 1/8 of its side in x and y (integer
      pixels, uniform), the uncovered border filled with 0;
    - ``"translation-cutout"``: then a square of 1/4 of the side, centred at a uniform
      pixel of each image (clipped at the edges), set to 0.

    ``generator`` draws the shifts and positions (on the CPU) for reproducibility.

    >>> x = torch.rand(4, 3, 64, 64)
    >>> diff_augment(x, "translation").shape
    torch.Size([4, 3, 64, 64])
    """
    policy = check_choice(policy, "policy", AUGMENTS)
    if policy == "none":
        return images
    B, _, H, W = images.shape
    dev = images.device

    def randint(low: int, high: int) -> torch.Tensor:  # (B, 1, 1) in [low, high)
        return torch.randint(low, high, (B, 1, 1), generator=generator).to(dev)

    sy, sx = int(H / 8 + 0.5), int(W / 8 + 0.5)
    ty, tx = randint(-sy, sy + 1), randint(-sx, sx + 1)
    b = torch.arange(B, device=dev)[:, None, None]  # (B, 1, 1)
    y = torch.arange(H, device=dev)[None, :, None]  # (1, H, 1)
    x = torch.arange(W, device=dev)[None, None, :]  # (1, 1, W)
    # Output (y, x) reads input (y - ty, x - tx), or the zero border of the padded copy.
    src_y = (y - ty + 1).clamp(0, H + 1)  # (B, H, 1) in the padded image
    src_x = (x - tx + 1).clamp(0, W + 1)  # (B, 1, W)
    padded = F.pad(images, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H + 2, W + 2, C)
    out = padded[b, src_y, src_x].permute(0, 3, 1, 2)  # (B, C, H, W)
    if policy == "translation-cutout":
        ch, cw = int(H / 4 + 0.5), int(W / 4 + 0.5)
        cy, cx = randint(0, H), randint(0, W)  # the square's centre, clipped at the edges
        top, left = cy - ch // 2, cx - cw // 2
        keep = ~((y >= top) & (y < top + ch) & (x >= left) & (x < left + cw))  # (B, H, W)
        out = out * keep[:, None].to(out.dtype)
    return out


# ----------------------------------------------------------------------------- sampling


def encode_caption(vocab, caption: str, *, max_len: int) -> tuple[list[int], list[str]]:
    """The token ids of ``caption`` in ``vocab`` (a :class:`~xmodal.text.vocab.Vocabulary`;
    <bos> ... <eos>, at most ``max_len``) and its words that ``vocab`` lacks (read as
    <unk>). ParameterError for a caption with no words: nothing to draw."""
    from xmodal.text.vocab import UNK_ID, tokenize

    if not isinstance(caption, str):
        raise ParameterError(f"a caption must be a string. Found: {caption!r}")
    words = tokenize(caption)
    if not words:
        raise ParameterError(f"caption {caption!r} has no words: nothing to draw")
    unknown = [w for w in words if vocab.token_to_id(w) == UNK_ID]
    return vocab.encode(caption, max_len=max_len), unknown


@torch.no_grad()
def generate_images(model: TextToImageGAN, token_ids: Sequence[Sequence[int]], *, n: int = 1,
                    seed: int = 0, batch_size: int = 100) -> torch.Tensor:  # fmt: skip
    """``n`` images of each sentence of ``token_ids`` (token id lists, <bos> ... <eos>):
    ``(len(token_ids) * n, 3, S, S)`` in [0, 1] on the CPU, the ``n`` of a sentence
    together. Noise ``k`` of every sentence is the same, the ``k``-th row drawn on the CPU
    from ``seed``, so a caption's images do not depend on the others asked with it. Runs
    ``batch_size`` images at a time, in the model's current mode (``eval()`` for batch-norm
    statistics)."""
    from xmodal.text.vocab import PAD_ID

    n = check_positive_int(n, "n")
    device = next(model.parameters()).device
    rows = [torch.tensor(list(ids)) for ids in token_ids for _ in range(n)]
    tokens = nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD_ID)
    lengths = torch.tensor([len(r) for r in rows])
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(n, model.noise_dim, generator=gen).repeat(len(token_ids), 1)
    out = []
    for s in range(0, len(rows), batch_size):
        batch = slice(s, s + batch_size)
        out.append(model.generate(tokens[batch].to(device), lengths[batch],
                                  noise[batch].to(device)).cpu())  # fmt: skip
    return torch.cat(out)


def caption_grid_records(
    captions: Sequence[str], unknown: Sequence[Sequence[str]], n: int, path
) -> list[dict]:
    """One predict record per caption drawn ``n`` times into the grid file ``path``: its
    ``input``, a ``text`` naming the file and the caption's ``unknown`` words (read as
    <unk>, :func:`encode_caption`), ``unknown_words`` and ``files``.

    >>> caption_grid_records(["a red zebra"], [["zebra"]], 2, "g.png")[0]["text"]
    '2 images in g.png  [not in the vocabulary, read as <unk>: zebra]'
    """
    records = []
    for caption, words in zip(captions, unknown, strict=True):
        text = f"{n} images in {path}"
        if words:
            text += f"  [not in the vocabulary, read as <unk>: {', '.join(words)}]"
        records.append(
            {"input": caption, "text": text, "unknown_words": list(words), "files": [str(path)]}
        )
    return records


# ----------------------------------------------------------------------------- training helpers


def wrong_indices(labels: torch.Tensor) -> torch.Tensor:
    """For each item of a batch, another item to take the "wrong" caption from: the next
    one (cyclically) whose class in ``labels`` ``(B,)`` differs, or the next one if all
    agree. Unlike :func:`mismatched`, a "wrong" caption then rarely fits the image too.

    >>> wrong_indices(torch.tensor([0, 0, 1, 2])).tolist()
    [2, 2, 3, 0]
    """
    n = labels.shape[0]
    out = (torch.arange(n) + 1) % n
    for shift in range(n - 1, 0, -1):  # the smallest shift with another class wins
        cand = (torch.arange(n) + shift) % n
        other = labels[cand] != labels
        out = torch.where(other, cand, out)
    return out


def encode_parts(discriminator: Discriminator, parts: Sequence[torch.Tensor], *,
                 augment: str = "none") -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The discriminator's ``(mid, h)`` (:meth:`Discriminator.encode_image`) of the images
    of ``parts`` ``[(B_k, 3, H, W), ...]``, one part after the other, each image through
    :func:`diff_augment` with ``augment``: in one batch, or part by part when the
    discriminator has batch norm, so that real and generated images do not set each
    other's statistics (as DCGAN trains)."""
    x = diff_augment(torch.cat(list(parts)), augment)
    if discriminator.norm != "batch":
        return discriminator.encode_image(x)
    encoded = [discriminator.encode_image(p) for p in x.split([len(p) for p in parts])]
    return torch.cat([mid for mid, _ in encoded]), torch.cat([h for _, h in encoded])


def discriminator_objective(
    discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor, text: torch.Tensor,
    wrong: torch.Tensor, *, loss: str = "bce", augment: str = "none",
    truth: Sequence[torch.Tensor] | None = None, aux_weight: float = 1.0,
    aux_fake: bool = False, aux_names: Sequence[str] = ("colour", "shape"),
) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """The discriminator's loss in one GAN-INT-CLS step, and its parts to log.

    ``real`` and ``fake`` ``(B, 3, S, S)`` (the generator's images, detached) are encoded
    once (:func:`encode_parts`, through ``augment``); the right sentences ``text`` ``(B, T)``
    are scored on both, the ``wrong`` ones ``(B, T)`` on the real images:
    :func:`discriminator_loss`. TAC-GAN with ``truth`` (one ``(B,)`` target per classifier,
    named by ``aux_names``): plus ``aux_weight`` times the classifiers' :func:`aux_loss` on
    the real images and, ``aux_fake``, on the generated ones with each classifier's last
    class ("generated", K+1); logs also each classifier's accuracy on the real images.
    """
    D, B = discriminator, real.shape[0]
    mid, h = encode_parts(D, [real, fake], augment=augment)  # real then generated, (2B, ...)
    right = D.score(h, torch.cat([text, text]))
    wrong_logits = D.score(h[:B], wrong)
    total, logs = discriminator_loss(right[:B], wrong_logits, right[B:], loss=loss)
    if truth is not None:
        heads = D.classify(mid)
        aux, parts = aux_loss([x[:B] for x in heads], truth)
        if aux_fake:
            generated = [torch.full((B,), x.shape[1] - 1, device=x.device) for x in heads]
            fake_class, _ = aux_loss([x[B:] for x in heads], generated)
            aux = aux + fake_class
            logs["d_aux_generated"] = float(fake_class.detach())
        total = total + aux_weight * aux
        for name, part, x, y in zip(aux_names, parts, heads, truth, strict=True):
            logs[f"d_aux_{name}"] = part
            logs[f"d_aux_{name}_acc"] = float((x[:B].detach().argmax(1) == y).float().mean())
    return total, logs


def generator_objective(
    discriminator: Discriminator, made: torch.Tensor, conds: Sequence[torch.Tensor], *,
    loss: str = "bce", augment: str = "none", named: Sequence[torch.Tensor] | None = None,
    aux_weight: float = 1.0, aux_names: Sequence[str] = ("colour", "shape"),
) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """The generator's loss in one GAN-INT-CLS step, and its parts to log.

    ``made`` ``(k * B, 3, S, S)``: the generator's images under each sentence batch of
    ``conds`` (the right sentences ``(B, T)`` first, then, for GAN-INT, their
    interpolations); the discriminator, frozen (gradients reach the images, not its
    weights), judges each under its sentence: :func:`generator_loss`. TAC-GAN with
    ``named`` (one ``(B,)`` target per classifier, ``-1`` where the caption does not name
    it): plus ``aux_weight`` times the classifiers' :func:`aux_loss` on the images of the
    right sentences.
    """
    from xmodal.nn.weights import frozen

    D, B = discriminator, conds[0].shape[0]
    with frozen(D):
        mid, h = encode_parts(D, made.split(B), augment=augment)
        judged = D.score(h, torch.cat(list(conds)))
        if named is not None:
            aux, parts = aux_loss(D.classify(mid[:B]), named)
    total, logs = generator_loss(judged[:B], judged[B:] if len(conds) > 1 else None, loss=loss)
    if named is not None:
        total = total + aux_weight * aux
        logs.update({f"g_aux_{name}": part for name, part in zip(aux_names, parts, strict=True)})
    return total, logs


def image_caption_loss(matcher: nn.Module, images: torch.Tensor,
                       text: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """AttnGAN's DAMSM idea at sentence level: a joint embedding ``matcher`` (with
    ``embed_images`` and ``logit_scale``, e.g. :class:`~xmodal.matching.JointEmbedding`)
    embeds each image of ``images`` ``(B, 3, H, W)``, and the loss is the cross entropy of
    picking its own caption among the batch's ``text`` ``(B, D)`` (unit vectors from the
    matcher's text side; logits: the matcher's scale, detached, times the cosine)."""
    img = matcher.embed_images(images)  # (B, D), unit vectors like text
    logits = matcher.logit_scale().detach() * img @ text.T  # (B, B)
    target = torch.arange(len(img), device=img.device)
    return F.cross_entropy(logits, target)


def gan_int_cls_step(
    model: TextToImageGAN,
    batch: dict,
    *,
    loss: str = "bce",
    interpolation: bool = True,
    beta: float = 0.5,
    augment: str = "none",
    aux_weight: float = 0.0,
    aux_fake: bool = False,
    matcher: nn.Module | None = None,
    match_weight: float = 0.0,
    update: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One GAN-INT-CLS step of ``model`` on ``batch`` (:func:`~xmodal.data.scenes.
    collate_pairs`: ``image``, ``tokens``, ``lengths``, ``label``, ``named``).

    The generator runs once, on the right sentences and (``interpolation``) their
    :func:`interpolate_texts` with ``beta``, the sentences detached; the wrong caption of
    an item is another item's (:func:`wrong_indices` of the labels). D's loss is
    :func:`discriminator_objective`, with TAC-GAN's classifiers when ``aux_weight > 0``
    (the labels' colours and shapes as truth, ``aux_fake``: their "generated" class); G's
    is :func:`generator_objective` (the attributes each caption names) plus
    ``match_weight`` times :func:`image_caption_loss` under the joint embedding
    ``matcher`` (none: no such term). ``update(i, loss)`` (an optimizer's step) is called
    with D's loss (``i = 0``) before G's is computed, so the updated D judges G, then with
    G's (``i = 1``); without ``update`` only the losses are computed (validation).

    Returns ``(d_loss + g_loss, logs)``: the sum detached, logs with ``d_loss``,
    ``g_loss`` and each term of both objectives.
    """
    from xmodal.data.scenes import class_attributes

    D, B, tac = model.discriminator, batch["image"].shape[0], aux_weight > 0
    text = model.encode_text(batch["tokens"], batch["lengths"])  # (B, T)
    wrong = text[wrong_indices(batch["label"].cpu()).to(text.device)]
    t = text.detach()
    conds = [t, interpolate_texts(t, beta=beta)] if interpolation else [t]
    made = model.generator(torch.cat(conds), model.noise(len(conds) * B))
    fake = made[:B]  # (B, 3, H, W): under the right sentences; then the interpolated

    loss_d, logs = discriminator_objective(
        D,
        batch["image"],
        fake.detach(),
        text,
        wrong,
        loss=loss,
        augment=augment,
        truth=class_attributes(batch["label"]) if tac else None,
        aux_weight=aux_weight,
        aux_fake=aux_fake,
    )
    if update is not None:
        update(0, loss_d)
    named = list(batch["named"].T) if tac else None  # what each caption names, or -1
    loss_g, g_logs = generator_objective(
        D, made, conds, loss=loss, augment=augment, named=named, aux_weight=aux_weight
    )
    if match_weight > 0 and matcher is not None:
        matcher.to(fake.device)  # a no-op after the first batch
        match = image_caption_loss(matcher, fake, t)
        g_logs["g_match"] = float(match.detach())
        loss_g = loss_g + match_weight * match
    if update is not None:
        update(1, loss_g)
    logs.update(g_logs, d_loss=float(loss_d.detach()), g_loss=float(loss_g.detach()))
    return (loss_d + loss_g).detach(), logs
