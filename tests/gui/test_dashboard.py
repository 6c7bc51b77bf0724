"""The dashboard's curves: created once, fed from numpy buffers, the user's zoom kept."""

import numpy as np

from gui.panels.dashboard import Dashboard, Series


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
    assert [label.text for _, label in plot.legend.items] == groups
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
