"""Writing figures: every PNG xmodal draws goes through :func:`save_figure`, so figures
of every task share one resolution, one margin rule and atomic writing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from xmodal._io import atomic_path, write_text
from xmodal.errors import ParameterError

__all__ = ["FIGURE_DPI", "save_figure", "save_figures", "unique_stems"]

FIGURE_DPI = 100
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def save_figure(fig, path: str | Path, *, dpi: int = FIGURE_DPI) -> Path:
    """Write the matplotlib figure ``fig`` as a PNG at ``path`` (atomically, tight
    margins, ``dpi`` dots per inch) and close it; return the path.

        >>> fig, ax = plt.subplots(); ax.plot([0, 1])  # doctest: +SKIP
        >>> save_figure(fig, "line.png")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: let it go
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path


def save_figures(figures: Mapping[str, object], out_dir: str | Path) -> list[Path]:
    """Write each figure of ``{name: Figure}`` as ``out_dir/<name>.png``; their paths.

    A ``str`` value is text that goes with the figures (sampled sentences), written as
    the file ``out_dir/<name>``, whose name must end in ``.txt``. Names are plain file
    names (letters, digits, ``_``, ``-``, ``.``), so none can reach outside ``out_dir``.
    """
    if not isinstance(figures, Mapping):
        raise ParameterError(
            f"figures must be a mapping of names to figures. Found: {type(figures).__name__}"
        )
    out_dir = Path(out_dir)
    paths = []
    for name, fig in figures.items():
        if not isinstance(name, str) or not _NAME.match(name) or name.startswith("."):
            raise ParameterError(
                f"a figure name must be a file stem (letters, digits, _ - .). Found: {name!r}"
            )
        if isinstance(fig, str):
            if not name.endswith(".txt"):
                raise ParameterError(f"a text figure's name must end in .txt. Found: {name!r}")
            paths.append(write_text(out_dir / name, fig))
        else:
            paths.append(save_figure(fig, out_dir / f"{name}.png"))
    return paths


def unique_stems(paths) -> list[str]:
    """One distinct name per input file for its output: the file's stem, with
    ``-<position>`` added to a stem an earlier input took (``a/x.png`` and ``b/x.png``
    give ``x`` and ``x-1``), so no input's output overwrites another's."""
    names: list[str] = []
    used: set[str] = set()
    for k, path in enumerate(paths):
        name = Path(path).stem
        while name in used:
            name = f"{name}-{k}"
        used.add(name)
        names.append(name)
    return names
