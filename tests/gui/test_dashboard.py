"""The dashboard's curves: created once, fed from numpy buffers, the user's zoom kept."""

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
    assert len(curve.xData) == 300
    assert curve.opts["clipToView"] and curve.opts["autoDownsample"] and curve.opts["downsampleMethod"] == "peak"
