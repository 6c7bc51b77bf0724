"""The model card's pictures (docs/INSIGHTS.md), drawn with Pillow alone: no matplotlib, no
torch, no Qt. Each is meant to be read at 100%: a title, axis labels, the class names (long ones
cut with "…"), a colour scale with its values, and the values themselves in the cells of a
small matrix. Every file is written atomically (engine/atomic_io.py).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from engine.atomic_io import atomic_write

Colour = tuple[int, int, int]

WHITE: Colour = (255, 255, 255)
INK: Colour = (33, 37, 41)
SOFT_INK: Colour = (95, 99, 104)
GRID: Colour = (222, 226, 230)
MISSING: Colour = (189, 189, 189)
BEATS: Colour = (198, 239, 206)
"""Table cell colour: the student beats its best teacher on the class."""
TRAILS: Colour = (255, 199, 206)
"""Table cell colour: the student trails its best teacher on the class."""
MATCHES: Colour = (255, 242, 204)
"""Table cell colour: no teacher knows the class, or another neutral remark."""

# ColorBrewer "Blues" (Harrower & Brewer 2003): light for low values, dark for high
_BLUES: tuple[Colour, ...] = ((247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214),
                              (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107))
# one colour per model in the reliability diagram (Tableau 10)
_SERIES: tuple[Colour, ...] = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                               (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))

_PAD = 16
_SMALL_MATRIX = 15  # at most this many rows and columns: each cell shows its value
_LABEL_WIDTH = 160  # class names longer than this many pixels are cut with "…"


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow ≥ 10.1 with FreeType: scalable
    except (TypeError, AttributeError, OSError, ImportError):
        return ImageFont.load_default()


# Pillow's default font covers ASCII and a little more: the rest is written as near as it can
_SUBSTITUTES = {"–": "-", "—": "-", "−": "-", "‒": "-", "―": "-", "×": "x", "≤": "<=", "≥": ">=", "→": "->",
                "←": "<-", "Δ": "delta ", "≈": "~", "\u00a0": " ", "•": "·"}
_GLYPHS: dict[tuple[int, str], bool] = {}


def _has_glyph(font, ch: str) -> bool:
    key = (id(font), ch)
    if key not in _GLYPHS:
        if ch.isspace() or not ch.isprintable():
            _GLYPHS[key] = ch == " "
        else:
            _GLYPHS[key] = bytes(font.getmask(ch)) != bytes(font.getmask("\uffff"))
    return _GLYPHS[key]


def _clean(text, font) -> str:
    """`text` in the glyphs `font` has: dashes as "-", accents dropped (é → e), "?" otherwise."""
    out = []
    for ch in str(text):
        if _has_glyph(font, ch):
            out.append(ch)
            continue
        near = _SUBSTITUTES.get(ch) or "".join(c for c in unicodedata.normalize("NFKD", ch)
                                               if not unicodedata.combining(c))
        out.append(near if near and all(_has_glyph(font, c) for c in near) else "?")
    return "".join(out)


def _width(text: str, font) -> int:
    text = _clean(text, font)
    if not text:
        return 0
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def _height(font) -> int:
    _, top, _, bottom = font.getbbox("Hgy…–")
    return int(math.ceil(bottom - top))


def _fit(text: str, font, width: int) -> str:
    """`text`, cut with "…" so that it is at most `width` pixels wide."""
    text = _clean(text, font)
    if _width(text, font) <= width:
        return text
    lo, hi = 0, min(len(text) - 1, width)  # no glyph is narrower than 1 px: longer never fits
    while lo < hi:  # the longest cut that fits (widths grow with the length)
        mid = (lo + hi + 1) // 2
        if _width(text[:mid].rstrip() + "…", font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…" if lo else "…"


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, fill: Colour = INK,
          anchor: str = "la") -> None:
    draw.text(xy, _clean(text, font), font=font, fill=fill, anchor=anchor)


def _vertical_text(image: Image.Image, centre: tuple[float, float], text: str, font, fill: Colour = INK,
                   align: str = "centre") -> None:
    """Draw `text` turned 90° anticlockwise (read bottom to top). align: `centre` puts the
    text's middle at `centre`; `top` puts its end (the last letter) at centre's y."""
    text = _clean(text, font)
    w, h = _width(text, font) + 4, _height(font) + 6
    strip = Image.new("L", (w, h), 0)
    ImageDraw.Draw(strip).text((2, h // 2), text, font=font, fill=255, anchor="lm")
    strip = strip.rotate(90, expand=True)
    x = int(round(centre[0] - strip.width / 2))
    y = int(round(centre[1] - strip.height / 2)) if align == "centre" else int(round(centre[1]))
    image.paste(Image.new("RGB", strip.size, fill), (x, y), strip)


def _blues(t: float) -> Colour:
    t = min(1.0, max(0.0, t)) * (len(_BLUES) - 1)
    i = min(int(t), len(_BLUES) - 2)
    f = t - i
    a, b = _BLUES[i], _BLUES[i + 1]
    return tuple(int(round(a[k] + (b[k] - a[k]) * f)) for k in range(3))


def _ink_on(colour: Colour) -> Colour:
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return WHITE if luminance < 140 else INK


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _format(value_format: str, value: float) -> str:
    try:
        return value_format.format(value)
    except (ValueError, TypeError):
        return f"{value:g}"


def _save(image: Image.Image, path) -> Path:
    path = Path(path)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG", optimize=True))
    return path


def _dashed_line(draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], fill: Colour,
                 width: int = 1, dash: float = 7, gap: float = 5) -> None:
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    if length == 0:
        return
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    s = 0.0
    while s < length:
        e = min(length, s + dash)
        draw.line([(a[0] + ux * s, a[1] + uy * s), (a[0] + ux * e, a[1] + uy * e)], fill=fill, width=width)
        s = e + gap


def heatmap_png(path, matrix, row_labels: Sequence[str], col_labels: Sequence[str], title: str, x_label: str,
                y_label: str, value_format: str = "{:.2f}", vmin: float = 0.0, vmax: float = 1.0,
                missing: str | None = "–") -> Path:
    """A matrix as coloured cells (light: vmin, dark blue: vmax) with its row and column labels,
    axis labels, title and a colour bar with values. A cell that is None or NaN is grey with
    `missing` written in it (None: "–"). With at most 15 rows and columns each cell shows its
    value (value_format). Returns `path`.
    """
    rows = [list(r) for r in matrix]
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    if len(row_labels) != n_rows or len(col_labels) != n_cols:
        raise ValueError(f"{n_rows}×{n_cols} matrix with {len(row_labels)} row and {len(col_labels)} column labels")
    values = [[_number(r[j]) if j < len(r) else None for j in range(n_cols)] for r in rows]
    missing = "–" if missing is None else missing
    span = (vmax - vmin) or 1.0
    biggest = max(n_rows, n_cols, 1)
    cell = max(12, min(56, 560 // biggest))
    show_values = biggest <= _SMALL_MATRIX

    title_font, axis_font = _font(20), _font(15)
    label_font = _font(max(9, min(14, cell - 3)))
    value_font = _font(max(10, min(15, cell // 3)))
    tick_font = _font(13)

    row_text = [_fit(t, label_font, _LABEL_WIDTH) for t in row_labels]
    col_text = [_fit(t, label_font, _LABEL_WIDTH) for t in col_labels]
    row_w = max((_width(t, label_font) for t in row_text), default=0)
    col_horizontal = all(_width(t, label_font) <= cell - 4 for t in col_text)
    col_h = _height(label_font) if col_horizontal else max((_width(t, label_font) for t in col_text), default=0)

    ticks = [vmin + span * k / 4 for k in range(5)]
    tick_text = [_format(value_format, t) for t in ticks]
    tick_w = max(_width(t, tick_font) for t in tick_text)
    any_missing = any(v is None for r in values for v in r)
    missing_note = "not measured"
    bar_w = 18

    grid_w, grid_h = cell * n_cols, cell * n_rows
    title_h, axis_h = _height(title_font), _height(axis_font)
    top = _PAD + title_h + 18
    left = _PAD + axis_h + 12 + row_w + 8
    bar_x = left + grid_w + 24
    right_w = 24 + bar_w + 8 + max(tick_w, _width(missing_note, tick_font) if any_missing else 0)
    width = max(left + grid_w + right_w + _PAD, _width(title, title_font) + 2 * _PAD,
                left + _width(x_label, axis_font) + _PAD)
    bar_h = max(grid_h, 160)
    bottom_of_bar = top + bar_h + (32 if any_missing else 0)
    height = max(top + grid_h + 8 + col_h + 12 + axis_h + _PAD, bottom_of_bar + _PAD,
                 top + _width(y_label, axis_font) + _PAD)

    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    _text(draw, (width / 2, _PAD), title, title_font, anchor="mt")

    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i][j]
            x0, y0 = left + j * cell, top + i * cell
            colour = MISSING if v is None else _blues((v - vmin) / span)
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=colour, outline=GRID)
            if v is None and cell >= 12:
                _text(draw, (x0 + cell / 2, y0 + cell / 2), missing, value_font, INK, anchor="mm")
            elif show_values:
                text = _fit(_format(value_format, v), value_font, cell - 4)
                _text(draw, (x0 + cell / 2, y0 + cell / 2), text, value_font, _ink_on(colour), anchor="mm")
    draw.rectangle([left - 1, top - 1, left + grid_w, top + grid_h], outline=SOFT_INK)

    for i, t in enumerate(row_text):
        _text(draw, (left - 6, top + i * cell + cell / 2), t, label_font, anchor="rm")
    for j, t in enumerate(col_text):
        cx = left + j * cell + cell / 2
        if col_horizontal:
            _text(draw, (cx, top + grid_h + 6), t, label_font, anchor="mt")
        else:
            _vertical_text(image, (cx, top + grid_h + 6), t, label_font, align="top")
    _text(draw, (left + grid_w / 2, top + grid_h + 8 + col_h + 12), x_label, axis_font, anchor="mt")
    _vertical_text(image, (_PAD + axis_h / 2 + 2, top + grid_h / 2), y_label, axis_font)

    # the colour bar: vmax at the top
    for k in range(bar_h):
        draw.line([(bar_x, top + k), (bar_x + bar_w - 1, top + k)], fill=_blues(1.0 - k / max(1, bar_h - 1)))
    draw.rectangle([bar_x - 1, top - 1, bar_x + bar_w, top + bar_h], outline=SOFT_INK)
    for t, text in zip(ticks, tick_text):
        y = top + (1.0 - (t - vmin) / span) * (bar_h - 1)
        draw.line([(bar_x + bar_w, y), (bar_x + bar_w + 4, y)], fill=SOFT_INK)
        _text(draw, (bar_x + bar_w + 8, y), text, tick_font, anchor="lm")
    if any_missing:
        y = top + bar_h + 14
        draw.rectangle([bar_x, y - 8, bar_x + bar_w - 1, y + 8], fill=MISSING, outline=SOFT_INK)
        _text(draw, (bar_x + bar_w / 2, y), missing, tick_font, anchor="mm")
        _text(draw, (bar_x + bar_w + 8, y), missing_note, tick_font, anchor="lm")
    return _save(image, path)


def reliability_png(path, calibration: dict, title: str = "Calibration: reliability diagram") -> Path:
    """The reliability diagram of docs/INSIGHTS.md's `calibration`: per model, the accuracy of
    each confidence bin against the bin's mean confidence (one line each; empty bins skipped),
    the diagonal of perfect calibration, a legend with each model's ECE, and below the samples
    per bin of the first model (the student). Returns `path`."""
    edges = [float(e) for e in calibration.get("edges") or [0.0, 1.0]]
    models = list(calibration.get("models") or [])
    title_font, axis_font, tick_font, legend_font = _font(20), _font(15), _font(13), _font(14)

    plot = 420
    hist_h = 70
    tick_w = _width("1.0", tick_font)
    left = _PAD + _height(axis_font) + 10 + tick_w + 8
    top = _PAD + _height(title_font) + 20
    legend_x = left + plot + 28
    entries = [(m.get("name", f"model {k}"), m.get("ece")) for k, m in enumerate(models)]
    legend_text = [f"{_fit(name, legend_font, 240)} (ECE {'n/a' if ece is None else f'{float(ece):.3f}'})"
                   for name, ece in entries] + ["perfect calibration"]
    line_h = _height(legend_font) + 10
    legend_w = 34 + max(_width(t, legend_font) for t in legend_text)
    width = max(legend_x + legend_w + _PAD, _width(title, title_font) + 2 * _PAD)
    hist_top = top + plot + 16 + _height(tick_font) + 10 + _height(axis_font) + 22 + _height(tick_font) + 6
    height = max(hist_top + hist_h + 8 + _height(tick_font) + _PAD,
                 top + line_h * len(legend_text) + 2 * _PAD)

    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image, "RGBA")
    _text(draw, (width / 2, _PAD), title, title_font, anchor="mt")

    def px(x: float) -> float:
        return left + x * plot

    def py(y: float) -> float:
        return top + (1.0 - y) * plot

    # grid at the bin edges, tick labels every 0.2
    for e in edges:
        draw.line([(px(e), top), (px(e), top + plot)], fill=GRID)
    for k in range(11):
        draw.line([(left, py(k / 10)), (left + plot, py(k / 10))], fill=GRID)
    for k in range(6):
        v = k / 5
        draw.line([(px(v), top + plot), (px(v), top + plot + 4)], fill=SOFT_INK)
        _text(draw, (px(v), top + plot + 7), f"{v:.1f}", tick_font, SOFT_INK, anchor="mt")
        draw.line([(left - 4, py(v)), (left, py(v))], fill=SOFT_INK)
        _text(draw, (left - 7, py(v)), f"{v:.1f}", tick_font, SOFT_INK, anchor="rm")
    draw.rectangle([left, top, left + plot, top + plot], outline=SOFT_INK)
    _dashed_line(draw, (px(0), py(0)), (px(1), py(1)), SOFT_INK, width=2)
    _text(draw, (left + plot / 2, top + plot + 12 + _height(tick_font)), "confidence (highest probability)",
          axis_font, anchor="mt")
    _vertical_text(image, (_PAD + _height(axis_font) / 2 + 2, top + plot / 2), "accuracy", axis_font)

    for k, model in enumerate(models):
        colour = _SERIES[k % len(_SERIES)]
        pairs = zip(model.get("confidence") or [], model.get("accuracy") or [])
        points = [(px(float(c)), py(float(a))) for c, a in pairs if c is not None and a is not None]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3 if k == 0 else 2, joint="curve")
        r = 5 if k == 0 else 4
        for x, y in points:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=WHITE)

    # samples per bin of the first model
    first = models[0] if models else {}
    counts = [int(c or 0) for c in first.get("count") or []]
    draw.rectangle([left, hist_top, left + plot, hist_top + hist_h], outline=SOFT_INK)
    if counts and len(edges) == len(counts) + 1:
        peak = max(counts) or 1
        for b, c in enumerate(counts):
            if c:
                y = min(hist_top + hist_h - 3, hist_top + hist_h - (hist_h - 4) * c / peak)  # a bar ≥ 2 px
                draw.rectangle([px(edges[b]) + 1, y, px(edges[b + 1]) - 1, hist_top + hist_h - 1],
                               fill=_SERIES[0] + (110,), outline=_SERIES[0])
        _text(draw, (left, hist_top - 5), _fit(f"samples per bin: {first.get('name', 'model 0')} (most: {peak})",
                                               tick_font, plot), tick_font, SOFT_INK, anchor="ld")
    for k in range(6):
        _text(draw, (px(k / 5), hist_top + hist_h + 5), f"{k / 5:.1f}", tick_font, SOFT_INK, anchor="mt")

    # the legend
    y = top + 4
    for k, text in enumerate(legend_text):
        mid = y + line_h / 2
        if k < len(models):
            colour = _SERIES[k % len(_SERIES)]
            draw.line([(legend_x, mid), (legend_x + 24, mid)], fill=colour, width=3)
            draw.ellipse([legend_x + 8, mid - 4, legend_x + 16, mid + 4], fill=colour)
        else:
            _dashed_line(draw, (legend_x, mid), (legend_x + 24, mid), SOFT_INK, width=2, dash=6, gap=4)
        _text(draw, (legend_x + 34, mid), text, legend_font, anchor="lm")
        y += line_h
    return _save(image, path)


def _colour(value) -> Colour | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.lstrip("#")
        if len(value) != 6:
            raise ValueError(f"colour {value!r}: use (r, g, b) or '#rrggbb'")
        return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))
    return tuple(int(c) for c in value)[:3]


def _numeric(text: str) -> bool:
    text = text.strip().replace("−", "-").rstrip("%").lstrip("+")
    try:
        float(text)
    except ValueError:
        return False
    return True


def table_png(path, header: Sequence[str], rows: Sequence[Sequence[str]], title: str,
              cell_colours: Sequence[Sequence] | None = None) -> Path:
    """A table as a picture (the amalgamation table): a title, a shaded header row, then the
    rows; numbers right-aligned, text left-aligned, cells wider than 260 px cut with "…".
    `cell_colours` (optional, the shape of `rows`): a background per cell, (r, g, b) or
    '#rrggbb' or None (e.g. BEATS where the student beats its best teacher, TRAILS where it
    trails). Returns `path`."""
    header = [str(h) for h in header]
    n_cols = len(header)
    body = [[str(c) for c in r] + [""] * (n_cols - len(r)) for r in rows]
    if any(len(r) > n_cols for r in rows):
        raise ValueError(f"a row has more cells than the header's {n_cols}")
    title_font, font = _font(20), _font(14)
    max_cell = 260
    header_text = [_fit(h, font, max_cell) for h in header]
    body_text = [[_fit(c, font, max_cell) for c in r] for r in body]
    widths = [max([_width(header_text[j], font)] + [_width(r[j], font) for r in body_text]) + 20
              for j in range(n_cols)]
    row_h = _height(font) + 12
    table_w = sum(widths)
    top = _PAD + _height(title_font) + 16
    width = max(table_w + 2 * _PAD, _width(title, title_font) + 2 * _PAD)
    height = top + row_h * (len(body) + 1) + _PAD

    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    _text(draw, (_PAD, _PAD), title, title_font)
    xs = [_PAD + sum(widths[:j]) for j in range(n_cols + 1)]

    def row(y: int, texts: list[str], colours: list[Colour | None], ink: Colour, stripe: Colour) -> None:
        for j, text in enumerate(texts):
            fill = colours[j] or stripe
            draw.rectangle([xs[j], y, xs[j + 1] - 1, y + row_h - 1], fill=fill)
            mid = y + row_h / 2
            if j > 0 and _numeric(text):
                _text(draw, (xs[j + 1] - 10, mid), text, font, _ink_on(fill) if colours[j] else ink, anchor="rm")
            else:
                _text(draw, (xs[j] + 10, mid), text, font, _ink_on(fill) if colours[j] else ink, anchor="lm")

    row(top, header_text, [None] * n_cols, INK, (233, 236, 239))
    for i, texts in enumerate(body_text):
        given = list(cell_colours[i]) if cell_colours is not None and i < len(cell_colours) else []
        colours = [_colour(given[j]) if j < len(given) else None for j in range(n_cols)]
        row(top + row_h * (i + 1), texts, colours, INK, WHITE if i % 2 == 0 else (248, 249, 250))
    draw.line([(_PAD, top + row_h - 1), (_PAD + table_w - 1, top + row_h - 1)], fill=SOFT_INK, width=2)
    for j in range(1, n_cols):
        draw.line([(xs[j], top), (xs[j], top + row_h * (len(body) + 1) - 1)], fill=GRID)
    draw.rectangle([_PAD, top, _PAD + table_w - 1, top + row_h * (len(body) + 1) - 1], outline=SOFT_INK)
    return _save(image, path)
