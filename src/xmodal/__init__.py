"""xmodal: multimodal learning with vision, text and audio, in PyTorch.

The toolkit is organised by how modalities meet: ``matching`` (one space for several
modalities), ``translation`` (one modality into another) and ``referencing`` (one
modality produced while consulting another), over the representations in ``audio``,
``text`` and ``vision``.
"""

from xmodal.errors import DataError, ParameterError, XmodalError

__all__ = ["DataError", "ParameterError", "XmodalError", "__version__"]


def __getattr__(name: str):
    # The version is looked up on first use: importlib.metadata costs ~30 ms, which every
    # `import xmodal` (and the speech helper processes) would otherwise pay.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("xmodal")
        except PackageNotFoundError:  # running from a source tree that was not installed
            return "0+unknown"
    raise AttributeError(f"module 'xmodal' has no attribute {name!r}")
