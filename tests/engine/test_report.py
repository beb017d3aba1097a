"""report.html: one self-contained page."""

from __future__ import annotations

import base64
import re

from xmodal.engine.report import flatten_metrics, read_curves, write_report


def _png(path, size=(20, 10)):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] / 10, size[1] / 10))
    fig.add_subplot().plot([0, 1], [1, 0])
    fig.savefig(path, dpi=10)
    return path


def test_flatten_metrics():
    assert flatten_metrics({"test": {"bleu": {"4": 0.2}, "n": 3}, "x": 1}) == {
        "test/bleu/4": 0.2, "test/n": 3, "x": 1,
    }  # fmt: skip


def test_curves_keep_the_last_value_of_a_repeated_step(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "epoch,step,train/loss_step,val/mse\n0,0,3.0,\n0,1,2.0,\n0,1,,5.0\n"
        "0,1,1.5,\n1,2,1.0,\n1,2,,4.0\n"  # step 1 repeated by a resumed run
    )
    curves = read_curves(csv)
    assert curves["train/loss"] == [(0.0, 3.0), (1.0, 1.5), (2.0, 1.0)]
    assert curves["val/mse"] == [(0.0, 5.0), (1.0, 4.0)]
    assert read_curves(tmp_path / "none.csv") == {}


def test_report_is_self_contained_and_escaped(tmp_path):
    (tmp_path / "logs" / "csv").mkdir(parents=True)
    (tmp_path / "logs" / "csv" / "metrics.csv").write_text(
        "epoch,step,train/loss_step,val/acc\n0,0,1.0,\n0,1,0.5,\n0,1,,0.7\n"
    )
    fig = _png(tmp_path / "fig.png")
    figures = [fig, tmp_path / "gone.png"]
    path = write_report(tmp_path, title="run <b>&", config_text="a: <1>\n",
                        metrics={"test": {"acc": 0.5}}, figures=figures)  # fmt: skip
    text = path.read_text()
    assert path == tmp_path / "report.html"
    assert "<title>run &lt;b&gt;&amp;</title>" in text and "<pre>a: &lt;1&gt;\n</pre>" in text
    assert "test/acc" in text and "0.5" in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2  # the curves and the figure
    assert base64.b64decode(images[1]) == fig.read_bytes()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert not list(tmp_path.glob("*.tmp"))
