"""Vision representations: image encoders with one interface, and soft visual attention."""

from xmodal.vision.attention import (
    AdditiveAttention,
    AttentionPool2d,
    DotProductAttention,
    VisualAttention,
)
from xmodal.vision.encoders import (
    FeatureInfo,
    ImageEncoder,
    Normalize,
    ResNetEncoder,
    SmallCNN,
    create_encoder,
    list_encoders,
    register_encoder,
)

__all__ = [
    "AdditiveAttention",
    "AttentionPool2d",
    "DotProductAttention",
    "FeatureInfo",
    "ImageEncoder",
    "Normalize",
    "ResNetEncoder",
    "SmallCNN",
    "VisualAttention",
    "create_encoder",
    "list_encoders",
    "register_encoder",
]
