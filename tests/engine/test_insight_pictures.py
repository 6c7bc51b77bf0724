"""engine/insight/pictures.py: each picture is written, opens, and its pixels say what it should."""

import numpy as np
import pytest
from PIL import Image

from engine.insight.pictures import BEATS, MISSING, TRAILS, heatmap_png, reliability_png, table_png

LABELS = ["cat", "dog", "bird"]


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(np.int32)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _colours(rgb: np.ndarray) -> int:
    return len(np.unique(rgb.reshape(-1, 3), axis=0))


def _count(rgb: np.ndarray, colour) -> int:
    return int(np.all(rgb == np.array(colour), axis=-1).sum())


def _heatmap(path, matrix, **kw):
    return heatmap_png(path, matrix, LABELS, LABELS, "Confusion", "predicted class", "true class", **kw)


def test_heatmap_is_written_atomically_and_readable(tmp_path):
    out = _heatmap(tmp_path / "confusion.png", [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.3, 0.7]])
    assert out == tmp_path / "confusion.png"
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]  # no temp file left
    rgb = _pixels(out)
    h, w, _ = rgb.shape
    assert 250 <= w <= 900 and 200 <= h <= 900
    assert _colours(rgb) > 50  # text, cells, the colour bar: far from one colour
    assert (rgb == 255).all(axis=-1).mean() > 0.3  # a white page, not a filled canvas


def test_heatmap_largest_value_is_darker_than_smallest(tmp_path):
    # two pictures of the same layout (same labels, values of the same width); the pixels that
    # differ are the cells (0, 0) and (0, 1): on the left the 1.0 cell, on the right the 0.0 cell
    probe = _pixels(_heatmap(tmp_path / "a.png", [[1.0, 0.0, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]))
    flat = _pixels(_heatmap(tmp_path / "b.png", [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]))
    assert probe.shape == flat.shape
    ys, xs = np.nonzero((probe != flat).any(axis=-1))
    assert xs.size > 200
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    middle = (left + right) // 2
    high = probe[top:bottom + 1, left:middle]
    low = probe[top:bottom + 1, middle + 1:right + 1]
    assert np.median(_luminance(high)) < np.median(_luminance(low)) - 100  # dark blue vs almost white
    # more saturated: max − min channel
    assert np.median(high.max(-1) - high.min(-1)) > np.median(low.max(-1) - low.min(-1)) + 50
    # the 0.5 cells lie in between
    mid_cell = flat[top:bottom + 1, left:middle]
    assert np.median(_luminance(high)) < np.median(_luminance(mid_cell)) < np.median(_luminance(low))


def test_heatmap_has_a_colour_bar_dark_at_the_top(tmp_path):
    rgb = _pixels(_heatmap(tmp_path / "c.png", np.eye(3)))
    lum = _luminance(rgb)
    # some column holds a smooth ramp over 150+ pixels going from dark (top) to light (bottom):
    # each step down gets a little lighter (0 to 8 levels), and the whole run spans 150+ levels
    smooth = (np.diff(lum, axis=0) >= 0) & (np.diff(lum, axis=0) < 8)
    best = 0
    for x in np.nonzero(smooth.sum(axis=0) >= 150)[0]:
        run = start = 0
        for y, ok in enumerate(np.append(smooth[:, x], False)):
            if not ok:
                if y - start >= 150 and lum[y, x] - lum[start, x] > 150:
                    best = max(best, y - start)
                start = y + 1
        del run
    assert best >= 150


def test_heatmap_missing_cells_are_grey_and_values_outside_the_scale_are_clipped(tmp_path):
    rgb = _pixels(_heatmap(tmp_path / "m.png", [[1.0, None, 0.0], [float("nan"), 2.5, -1.0], [0.2, 0.3, 0.4]]))
    assert _count(rgb, MISSING) > 2 * 20 * 20  # two grey cells (and the key beside the colour bar)
    without = _pixels(_heatmap(tmp_path / "n.png", [[1.0, 0.5, 0.0], [0.5, 2.5, -1.0], [0.2, 0.3, 0.4]]))
    assert _count(without, MISSING) == 0


def test_heatmap_of_many_classes_without_values_and_long_labels_stays_a_sensible_size(tmp_path):
    n = 40
    labels = [f"class {i} " + "with a very long name " * 20 for i in range(n)]
    rng = np.random.default_rng(0)
    out = heatmap_png(tmp_path / "big.png", rng.random((n, n)), labels, labels, "Confusion", "predicted", "true")
    rgb = _pixels(out)
    h, w, _ = rgb.shape
    assert 500 <= w <= 1200 and 500 <= h <= 1200  # labels cut, cells shrunk
    assert _colours(rgb) > 100


def test_heatmap_counts_with_their_own_scale(tmp_path):
    counts = [[118, 2, 0], [5, 100, 10], [0, 0, 120]]
    out = heatmap_png(tmp_path / "counts.png", counts, LABELS, LABELS, "Counts", "predicted", "true",
                      value_format="{:.0f}", vmin=0, vmax=120)
    rgb = _pixels(out)
    assert _colours(rgb) > 50


def test_heatmap_refuses_labels_that_do_not_fit_the_matrix(tmp_path):
    with pytest.raises(ValueError):
        heatmap_png(tmp_path / "x.png", np.eye(3), ["a", "b"], LABELS, "t", "x", "y")
    assert not (tmp_path / "x.png").exists()


def _calibration():
    return {"edges": [k / 10 for k in range(11)],
            "models": [{"name": "student", "ece": 0.031,
                        "confidence": [None, None, None, 0.35, 0.46, 0.55, 0.66, 0.74, 0.86, 0.97],
                        "accuracy": [None, None, None, 0.30, 0.40, 0.52, 0.70, 0.75, 0.88, 0.98],
                        "count": [0, 0, 0, 3, 5, 9, 14, 20, 40, 200]},
                       {"name": "digits 0-4", "ece": None,
                        "confidence": [None] * 10, "accuracy": [None] * 10, "count": [0] * 10},
                       {"name": "digits 5-9", "ece": 0.2,
                        "confidence": [None, None, None, None, None, 0.55, None, 0.75, None, 0.95],
                        "accuracy": [None, None, None, None, None, 0.2, None, 0.4, None, 0.7],
                        "count": [0, 0, 0, 0, 0, 4, 0, 6, 0, 30]}]}


def test_reliability_diagram_draws_each_model_in_its_colour(tmp_path):
    out = reliability_png(tmp_path / "calibration.png", _calibration())
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.png"]
    rgb = _pixels(out)
    h, w, _ = rgb.shape
    assert 500 <= w <= 1100 and 500 <= h <= 1000
    assert _colours(rgb) > 50
    student, third = (31, 119, 180), (44, 160, 44)  # the first and third series colours
    assert _count(rgb, student) > 300  # its line, its markers, its legend swatch, the bar outlines
    assert _count(rgb, third) > 100

    # the student's line moves with its accuracy: all right (1.0) is drawn higher than all wrong
    def student_rows(acc):
        calibration = _calibration()
        calibration["models"][0]["accuracy"] = [None if a is None else acc
                                                for a in calibration["models"][0]["accuracy"]]
        moved = _pixels(reliability_png(tmp_path / f"acc{acc}.png", calibration))
        assert moved.shape == rgb.shape
        return np.all(moved == np.array(student), axis=-1) & ~np.all(rgb == np.array(student), axis=-1)

    high, low = np.nonzero(student_rows(1.0))[0], np.nonzero(student_rows(0.0))[0]
    assert high.size > 100 and low.size > 100
    assert high.mean() + 200 < low.mean()  # 1.0 and 0.0 are the plot's height (420 px) apart


def test_reliability_diagram_without_models_or_points_still_draws_axes(tmp_path):
    out = reliability_png(tmp_path / "empty.png", {"edges": [0.0, 0.5, 1.0], "models": []})
    rgb = _pixels(out)
    assert _colours(rgb) > 10 and rgb.shape[0] > 400


def test_table_colours_the_cells_it_is_given(tmp_path):
    header = ["class", "support", "student", "digits 0-4", "best", "delta", "verdict"]
    rows = [["0", "120", "0.97", "1.00", "1.00", "-0.03", "trails"],
            ["1", "118", "0.99", "0.98", "0.98", "+0.01", "matches"],
            ["2", "99", "0.95", "0.90", "0.90", "+0.05", "beats"]]
    colours = [[None] * 6 + [TRAILS], [None] * 7, [None] * 6 + ["#c6efce"]]
    out = table_png(tmp_path / "amalgamation.png", header, rows, "What the student learned", colours)
    rgb = _pixels(out)
    h, w, _ = rgb.shape
    assert 400 <= w <= 1000 and 100 <= h <= 300
    assert _colours(rgb) > 30
    beats, trails = _count(rgb, BEATS), _count(rgb, TRAILS)
    assert beats > 300 and trails > 300
    # the trailing row is above the beating one
    rows_of = {c: np.nonzero(np.all(rgb == np.array(c), axis=-1))[0] for c in (TRAILS, BEATS)}
    assert rows_of[TRAILS].max() < rows_of[BEATS].min()
    plain = _pixels(table_png(tmp_path / "plain.png", header, rows, "What the student learned"))
    assert _count(plain, BEATS) == 0 and _count(plain, TRAILS) == 0


def test_table_cuts_long_cells(tmp_path):
    out = table_png(tmp_path / "t.png", ["class", "n"], [["x" * 500, "1"], ["y", "2"]], "Long")
    w = _pixels(out).shape[1]
    assert w < 450
