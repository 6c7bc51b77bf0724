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
