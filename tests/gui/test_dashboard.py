"""The dashboard's curves: created once, fed from numpy buffers, the user's zoom kept."""

import numpy as np
import pytest

from gui.panels.dashboard import Dashboard, Series, friendly_name


def test_series_grows_without_losing_points():
    s = Series(capacity=2)
    for i in range(1000):
        s.append(i, 2 * i)
    x, y = s.view()
    assert len(x) == 1000 and x[-1] == 999 and y[-1] == 1998


def test_one_curve_per_metric_redrawn_by_the_timer_and_zoom_kept(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.add_metrics(0.5, {"loss/total": 1.0, "val/acc": 0.5, "lr": 0.1})
    curve = dash.curves["loss/total"]
    for i in range(1, 200):
        dash.add_metrics(0.5 + i, {"loss/total": 1.0 / i})
    assert dash.curves["loss/total"] is curve  # created once
    drawn = curve.xData
    assert drawn is None or len(drawn) < 200  # not drawn per event...
    qtbot.waitUntil(lambda: curve.xData is not None and len(curve.xData) == 200, timeout=2000)  # ...but on the timer
    plot = dash.plots["loss"]
    plot.setXRange(10, 20, padding=0)  # the user zooms in: auto-range stops
    before = plot.viewRange()[0]
    for i in range(200, 300):
        dash.add_metrics(0.5 + i, {"loss/total": 0.001})
    qtbot.wait(300)
    assert plot.viewRange()[0] == before
    assert dash.points("loss/total") == 300  # all kept; the plot is handed what it shows
    assert curve.xData[0] <= 10 and curve.xData[-1] >= 20 and len(curve.xData) == 12
    plot.enableAutoRange()  # zoomed out again (the "A" button): the whole curve
    qtbot.waitUntil(lambda: len(curve.xData) == 300, timeout=2000)


def test_a_million_points_reach_the_plot_as_their_min_max_envelope(qapp):
    rng = np.random.default_rng(0)
    series = Series()
    x, y = np.arange(1_000_000, dtype=float), rng.normal(size=1_000_000)
    series.extend(x[:600_000], y[:600_000])
    series.visible(None, None, 1000)  # the pyramid is built up to here
    series.extend(x[600_000:], y[600_000:])  # and brought up to date for the rest only
    xs, ys = series.visible(None, None, 1000)
    assert len(xs) <= 2000 and ys.max() == y.max() and ys.min() == y.min()  # no peak is lost
    assert xs[0] == 0 and xs[-1] == x[-1] and np.all(np.diff(xs) >= 0)
    zx, zy = series.visible(1000.0, 1400.0, 1000)  # zoomed in: every point, no decimation
    assert np.array_equal(zy[1:-1], y[1000:1401]) and zx[0] <= 1000 and zx[-1] >= 1400
    sx, sy = series.visible(1000.0, 400_000.0, 1000)  # a wide part: decimated, its extremes kept
    assert len(sx) <= 2000 and sy.max() == y[999:400_002].max()


def test_gradient_norms_get_a_log_plot_by_step_with_one_curve_per_layer_group(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.add_metrics(0.5, {"loss/total": 1.0, "lr": 0.1}, step=10)
    assert "grad" not in dash.plots  # no gradient norms in the run: no plot for them
    groups = ["body.1", "body.4", "head"]
    for i in range(1, 51):
        dash.add_metrics(i / 10, {"loss/total": 1.0 / i, **{f"grad/{g}": 10.0 ** -k / i for k, g in enumerate(groups)}},
                         step=10 * i)
    plot = dash.plots["grad"]
    assert plot.titleLabel.text == "Gradient norms" and plot.getAxis("left").logMode
    assert plot.getAxis("bottom").labelText == "step"
    curves = [item for item in plot.listDataItems()]
    assert [c.name() for c in curves] == groups  # one per group, named in the legend
    assert [label.text for _, label in dash.legends["grad"].items] == groups
    qtbot.waitUntil(lambda: all(c.xData is not None and len(c.xData) == 50 for c in curves), timeout=2000)
    assert list(dash.curves["grad/head"].xData[:2]) == [10, 20]  # x: the step, not the epoch
    assert dash.points("loss/total") == 51 and dash.series["loss/total"].x[1] == 0.1  # the others: by epoch
    dash.add_metrics(6.0, {"grad/head": 0.0}, step=600)  # nothing to draw on a log scale
    assert dash.points("grad/head") == 50

    dash.clear_live()  # the next run has no gradient norms: the plot goes
    assert "grad" not in dash.plots and plot.scene() is None
    dash.add_metrics(0.1, {"grad/head": 0.5}, step=1)
    assert dash.plots["grad"].getAxis("left").logMode and len(dash.plots["grad"].listDataItems()) == 1


def test_a_stored_runs_gradient_norms_show_when_compared_and_resumed(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    steps = np.array([10.0, 20.0, 30.0])
    stored = {"loss/total": (np.array([0.5, 1.0, 1.5]), np.array([1.0, 0.5, 0.2])),
              "grad/body.1": (steps, np.array([0.3, 0.2, 0.1])), "grad/head": (steps, np.array([1.0, 0.0, 0.5]))}
    assert Dashboard.x_unit("grad/head") == "step" and Dashboard.x_unit("loss/total") == "epoch"
    dash.show_history({7: ("digits", stored)})
    plot = dash.plots["grad"]
    drawn = plot.listDataItems()
    assert len(drawn) == 2 and [c.name() for c in drawn] == ["#7 digits (grad. norms)", None]
    assert list(drawn[1].xData) == [10.0, 30.0]  # the 0 left out of the log scale
    dash.show_history({})
    assert "grad" not in dash.plots
    for name, (x, y) in stored.items():  # a resumed run: its curves so far
        dash.add_points(name, x, y)
    assert dash.points("grad/body.1") == 3 and dash.points("grad/head") == 2 and dash.points("loss/total") == 3


@pytest.mark.parametrize("key, name", [
    ("loss/total", "total loss"), ("loss/ce", "cross-entropy (labels)"), ("loss/kd", "KD (all teachers)"),
    ("loss/kd/high digits", "KD: high digits"), ("loss/hint/low digits/fc1", "hint: low digits / fc1"),
    ("val/acc", "validation accuracy"), ("test/acc", "test accuracy"), ("train/acc", "training accuracy"),
    ("val/loss", "validation loss"), ("lr", "learning rate"), ("grad/body.1", "body.1"),
    ("test/teacher_acc/low digits", "teacher low digits (test)"), ("custom/thing", "custom/thing")])
def test_metric_keys_read_as_words(key, name):
    assert friendly_name(key) == name


def _legend_entry(dash, plot_key, text):
    return next(label for _, label in dash.legends[plot_key].items if label.text == text)


def test_curves_have_friendly_names_the_raw_key_as_tooltip_and_labelled_axes(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.add_metrics(1.0, {"loss/total": 1.0, "loss/ce": 0.8, "loss/kd/high digits": 0.3, "lr": 0.01,
                           "train/acc": 0.6, "val/acc": 0.7, "test/teacher_acc/low digits": 0.9})
    assert dash.curves["loss/kd/high digits"].name() == "KD: high digits"
    assert _legend_entry(dash, "loss", "KD: high digits").toolTip() == "loss/kd/high digits"
    assert _legend_entry(dash, "loss", "cross-entropy (labels)").toolTip() == "loss/ce"
    assert _legend_entry(dash, "acc", "training accuracy").toolTip() == "train/acc"  # on the accuracy plot
    assert _legend_entry(dash, "acc", "teacher low digits (test)").toolTip() == "test/teacher_acc/low digits"
    assert _legend_entry(dash, "lr", "learning rate").toolTip() == "lr"
    dash.add_metrics(1.0, {"grad/head": 0.5}, step=5)
    labels = {key: (plot.getAxis("bottom").labelText, plot.getAxis("left").labelText)
              for key, plot in dash.plots.items()}
    assert labels == {"loss": ("epoch", "loss"), "acc": ("epoch", "accuracy"), "lr": ("epoch", "learning rate"),
                      "grad": ("step", "gradient norm")}
    dash.clear_live()  # the legends empty with the curves
    assert all(not legend.items for legend in dash.legends.values())


def test_legends_sit_outside_the_plots_view_boxes(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.resize(1200, 400)
    dash.show()
    qtbot.waitExposed(dash)
    names = ["loss/total", "loss/ce", "loss/kd", "loss/kd/low digits", "loss/kd/middle digits",
             "loss/kd/high digits", "val/loss"]
    for i in range(1, 40):
        dash.add_metrics(i / 2, {**{n: 1.0 / i + k for k, n in enumerate(names)}, "val/acc": 0.5, "train/acc": 0.6,
                                 "lr": 0.01})
    qtbot.wait(300)  # drawn, laid out
    for key, plot in dash.plots.items():
        legend = dash.legends[key]
        assert len(legend.items) >= 1
        view = plot.getViewBox().sceneBoundingRect()
        box = legend.sceneBoundingRect()
        assert box.height() > 0 and box.width() > 0
        assert not box.intersects(view), key  # never over the curves
        for sample, label in legend.items:  # each entry (its line sample too)
            assert not label.sceneBoundingRect().intersects(view) and label.isVisible()
            assert not sample.sceneBoundingRect().intersects(view)


def labels(plot) -> set[str]:
    """The texts the plot's y axis draws now."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(400, 400, QImage.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = plot.getAxis("left").generateDrawSpecs(painter)
    finally:
        painter.end()
    return {text for _rect, _flags, text in specs[2]} if specs else set()


def test_the_loss_plot_fits_the_curves_after_the_first_spike_and_can_be_log_scaled(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.resize(900, 400)
    dash.show()
    for i in range(100):  # a spike of 50 in the first step, then a loss between 0.5 and 0.2
        dash.add_metrics(i / 10, {"loss/total": 50.0 if i == 0 else 0.5 - 0.003 * i})
    plot = dash.plots["loss"]
    qtbot.waitUntil(lambda: dash.curves["loss/total"].xData is not None
                    and len(dash.curves["loss/total"].xData) == 100, timeout=2000)
    qtbot.waitUntil(lambda: plot.viewRange()[1][1] < 1.0, timeout=2000)
    y0, y1 = plot.viewRange()[1]
    assert 0.1 < y0 < 0.21 and 0.48 < y1 < 0.6  # fits the rest: the spike at 50 is left out
    assert plot.viewRange()[0][0] <= 0.0  # x still spans the whole run

    log = dash.findChild(type(dash.log_loss), "loss-log-scale")
    assert log is dash.log_loss and not log.isChecked()
    log.setChecked(True)
    assert plot.getAxis("left").logMode
    qtbot.waitUntil(lambda: plot.viewRange()[1][1] < 0.0, timeout=2000)  # log10 of 0.5: below 0
    y0, y1 = plot.viewRange()[1]
    assert np.log10(0.2) - 0.1 < y0 < np.log10(0.203) and np.log10(0.48) <= y1 < np.log10(0.5) + 0.1
    assert labels(plot) == {"0.2", "0.3", "0.4"}  # within a decade: its multiples, as they are
    for i in range(100, 110):  # now over two decades: the decades only, not 0.02 … 0.9 piled up
        dash.add_metrics(i / 10, {"loss/total": 0.01})
    qtbot.waitUntil(lambda: plot.viewRange()[1][0] < -1.5, timeout=2000)
    assert labels(plot) == {"0.01", "0.1"}
    log.setChecked(False)
    assert not plot.getAxis("left").logMode

    plot.setYRange(0, 60, padding=0)  # the user's own view: kept as new points come
    for i in range(100, 120):
        dash.add_metrics(i / 10, {"loss/total": 0.1})
    qtbot.wait(300)
    assert plot.viewRange()[1] == [0, 60]


def test_curves_of_one_plot_never_share_a_colour(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.add_metrics(2.0, {"pretrain/probe_acc": 0.4})  # an accuracy before the run's eleven other curves
    dash.add_metrics(3.0, {"loss/total": 1.0, "loss/ce": 0.5, "lr": 0.1, "train/acc": 0.5,
                           **{f"loss/kd/teacher {k}": 0.3 for k in range(6)}})
    dash.add_metrics(3.0, {"val/acc": 0.6, "test/acc": 0.6, **{f"test/teacher_acc/t{k}": 0.7 for k in range(3)}})
    for key in ("acc", "loss"):
        colors = [c.opts["pen"].color().name() for c in dash.plots[key].listDataItems()]
        assert len(colors) >= 6 and len(set(colors)) == len(colors), (key, colors)


def test_self_supervised_pretraining_gets_its_own_loss_plot_and_the_probe_goes_with_the_accuracies(qtbot):
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.add_metrics(0.5, {"loss/total": 1.0, "lr": 0.1}, step=10)
    assert "pretrain" not in dash.plots  # a run without pretraining: no plot for it
    for i in range(1, 6):
        dash.add_metrics(i, {"pretrain/loss": 5.0 - i / 2, "lr": 0.001}, step=10 * i)
    dash.add_metrics(5.0, {"pretrain/probe_acc": 0.8}, step=50)
    plot = dash.plots["pretrain"]
    assert plot.titleLabel.text == "Self-supervised pretraining"
    assert plot.getAxis("left").labelText == "pretraining loss"
    assert [c.name() for c in plot.listDataItems()] == ["pretraining loss"]  # its own axis: a loss of ≈ 8
    accuracy = dash.plots["acc"]  # the probe (0–1) among the accuracies, not squashed under the loss
    assert "linear probe (pretrained)" in [c.name() for c in accuracy.listDataItems()]
    assert _legend_entry(dash, "acc", "linear probe (pretrained)").toolTip() == "pretrain/probe_acc"
    assert "linear probe (pretrained)" not in [label.text for _, label in dash.legends["pretrain"].items]
    assert dash.curves["pretrain/probe_acc"].opts["symbol"] == "o"  # one point: drawn as a dot
    assert dash.points("pretrain/loss") == 5 and dash.points("pretrain/probe_acc") == 1
    dash.clear_live()
    assert "pretrain" not in dash.plots
