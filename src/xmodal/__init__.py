"""xmodal: multimodal learning with vision, text and audio, in PyTorch.

The toolkit is organised by how modalities meet: ``matching`` (one space for several
modalities), ``translation`` (one modality into another) and ``referencing`` (one
modality produced while consulting another), over the representations in ``audio``,
``text`` and ``vision``.
"""

from importlib.metadata import PackageNotFoundError, version

from xmodal.errors import DataError, ParameterError, XmodalError

try:
    __version__ = version("xmodal")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["DataError", "ParameterError", "XmodalError", "__version__"]
