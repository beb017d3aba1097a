"""``report.html``: one self-contained page per run (metrics, learning curves, figures,
config), readable offline: images are embedded as base64 PNG, nothing is linked.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from xmodal._io import write_text
from xmodal.viz.figure import FIGURE_DPI

__all__ = ["flatten_metrics", "read_curves", "write_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 0.2em 1em; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; } td.num { text-align: right; font-family: monospace; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
figure { margin: 1em 0; } img { max-width: 100%; } figcaption { color: #666; }
"""


def flatten_metrics(metrics: Mapping, prefix: str = "") -> dict[str, object]:
    """``{"test": {"bleu": {"4": 0.2}}}`` as ``{"test/bleu/4": 0.2}``."""
    flat: dict[str, object] = {}
    for key, value in metrics.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name))
        else:
            flat[name] = value
    return flat


def _format(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def read_curves(csv_path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Learning curves from Lightning's CSV log: ``{name: [(x, y), ...]}``.

    ``train/loss`` is taken per step (x = step), every ``val/*`` per epoch (x = epoch).
    Rows repeated by a resumed run (the steps after its checkpoint) keep the later value.
    """
    path = Path(csv_path)
    if not path.is_file():
        return {}
    curves: dict[str, dict[float, float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for key, text in row.items():
                if not key or not text:
                    continue
                if key == "train/loss_step" or key == "train/loss":
                    x_key = "step"
                    name = "train/loss"
                elif key.startswith("val/"):
                    x_key = "epoch"
                    name = key
                else:
                    continue
                try:
                    x, y = float(row[x_key]), float(text)
                except (KeyError, TypeError, ValueError):
                    continue
                curves.setdefault(name, {})[x] = y
    return {name: sorted(points.items()) for name, points in curves.items()}


def _curves_png(curves: Mapping[str, Sequence[tuple[float, float]]]) -> bytes | None:
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = sorted(curves, key=lambda n: (n != "train/loss", n))
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs, ys = zip(*curves[name], strict=True)
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3)
        ax.set_title(name)
        ax.set_xlabel("step" if name == "train/loss" else "epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI)
    return buf.getvalue()


def _png_of(path: Path) -> bytes | None:
    """The figure as PNG bytes (PNG files as they are; other raster formats converted)."""
    if path.suffix.lower() == ".png":
        return path.read_bytes()
    if path.suffix.lower() in (".jpg", ".jpeg"):
        import matplotlib.image as mpimg

        buf = io.BytesIO()
        mpimg.imsave(buf, mpimg.imread(path), format="png")
        return buf.getvalue()
    return None  # vector figures (.svg, .pdf) stay as files beside the report


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_report(
    run_dir: str | Path,
    *,
    title: str,
    config_text: str,
    metrics: Mapping,
    figures: Sequence[str | Path] = (),
) -> Path:
    """Write ``run_dir/report.html`` and return its path.

    The page holds a table of ``metrics`` (nested keys joined by ``/``), learning curves
    drawn from ``run_dir/logs/csv/metrics.csv``, the ``figures`` (PNG or JPEG files) and
    ``config_text``, all in one file with no external links.
    """
    run_dir = Path(run_dir)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(str(run_dir))} &middot; written {datetime.now():%Y-%m-%d %H:%M}</p>",
        "<h2>Metrics</h2>",
    ]
    flat = flatten_metrics(metrics)
    if flat:
        parts.append("<table><tr><th>metric</th><th>value</th></tr>")
        for key, value in flat.items():
            parts.append(f'<tr><td>{esc(key)}</td><td class="num">{esc(_format(value))}</td></tr>')
        parts.append("</table>")
    else:
        parts.append("<p>No metrics.</p>")

    parts.append("<h2>Learning curves</h2>")
    png = _curves_png(read_curves(run_dir / "logs" / "csv" / "metrics.csv"))
    parts.append(_img(png, "learning curves") if png else "<p>No logged curves.</p>")

    shown = []
    for fig_path in figures:
        fig_path = Path(fig_path)
        if fig_path.is_file() and (fig_png := _png_of(fig_path)) is not None:
            shown.append(
                f"<figure>{_img(fig_png, fig_path.stem)}"
                f"<figcaption>{esc(fig_path.name)}</figcaption></figure>"
            )
    if shown:
        parts.append("<h2>Figures</h2>")
        parts.extend(shown)

    parts.append("<h2>Config</h2>")
    parts.append(f"<pre>{esc(config_text)}</pre>")
    parts.append("</body></html>")
    return write_text(run_dir / "report.html", "\n".join(parts) + "\n")
