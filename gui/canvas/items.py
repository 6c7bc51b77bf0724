"""What the canvas draws: node cards with ports and a status line, and links between ports."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QGraphicsPathItem

from engine.spec import (
    CalibrationSpec,
    ExportSpec,
    PruneStep,
    QuantizeStep,
    StrategySpec,
    StudentInit,
    StudentSpec,
    TrainingSpec,
)
from gui import theme
from gui.document.folder_info import is_folder_node, scan_words
from gui.document.kinds import KINDS
from gui.document.model import Link, Node
from gui.document.schema import ARCHITECTURES, DATA_FORMATS, base_name, card_line, with_defaults
from gui.document.teacher_proposal import contract_words
from gui.document.text_info import card_words, is_text_node, preview_words, teacher_text, tokenizer_warning
from gui.document.validation import INCOMPLETE, OK
from gui.theme import ACCENT, STATE_COLORS, STATE_WORDS

# text sizes in pixels at zoom 1 (the canvas's default), whatever the screen's DPI: 10 px or more
# down to Fit to View's smallest zoom, 0.8 (the port names, 9.6 px)
HEADER_PX, TITLE_PX, LINE_PX, STATUS_PX, PORT_PX = 13, 16, 13, 13, 12
HEADER_H, TITLE_H, LINE_H, STATUS_H = 26.0, 20.0, 17.0, 16.0  # LINE_H: a summary line
STATUS_LINES = 2  # the status line wraps to two lines, then elides (the tooltip has it whole)
NODE_W, PORT_R = 260.0, 6.0
INPUTS_W = 72.0  # a card with inputs: their names on the left, the card's words from here
NODE_H = HEADER_H + 4 + TITLE_H + 2 * LINE_H + 4 + STATUS_LINES * STATUS_H + 6  # a card grows by
# LINE_H for each summary line past the first two


def wrap_lines(metrics: QFontMetrics, text: str, width: int, lines: int = STATUS_LINES) -> list[str]:
    """`text` in at most `lines` lines of `width` pixels: broken between words where it can be,
    the last line elided when the text is longer."""
    out: list[str] = []
    rest = text.strip()
    while rest and len(out) < lines - 1:
        if metrics.horizontalAdvance(rest) <= width:
            break
        cut = len(rest)
        while cut > 1 and metrics.horizontalAdvance(rest[:cut]) > width:
            cut -= 1
        space = rest.rfind(" ", 0, cut + 1)
        if space > 0 and metrics.horizontalAdvance(rest[:space]) <= width:
            cut = space
        out.append(rest[:cut].rstrip().removesuffix(" ·"))
        rest = rest[cut:].lstrip().removeprefix("· ")  # a line starts with words, not a separator
    if rest:
        out.append(metrics.elidedText(rest, Qt.ElideRight, width))
    return out


def pixel_font(base: QFont, px: int, bold: bool = False) -> QFont:
    font = QFont(base)
    font.setPixelSize(px)
    font.setBold(bold)
    return font


def summary(node: Node) -> list[str]:
    """Two short lines that say what the node is, read off its properties (where unset, the
    spec's defaults) and file info; a teacher adds its input contract and output kind where they
    are not the defaults."""
    p, info = node.props, node.info
    if node.kind == "data":
        member = DATA_FORMATS.get(p.get("format"))
        if member is None:
            return ["choose a format", ""]
        values = with_defaults(member, p)
        split = values.get("split") or {}
        fractions = [split.get("val"), split.get("test")]
        shown = all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in fractions)
        tests = [values.get(f) for f in member.test_fields.values() if values.get(f)]
        folder = is_folder_node(node)
        test = (f"test {'folder ' if folder else ''}{base_name(tests[0])}" if tests
                else f"test {fractions[1]:g}" if shown else "")
        second = " · ".join(([f"split val {fractions[0]:g}"] if shown else []) + ([test] if test else [])
                            + ([] if values.get("use_labels", True) else ["no labels"]))
        scan = scan_words(info) if folder else preview_words(info) if is_text_node(node) else ""
        return [card_line(member, p), second, *([scan] if scan else [])]
    if node.kind == "teacher":
        classes = p.get("classes") or []
        first = f"{len(classes)} classes: {', '.join(classes[:5])}{'…' if len(classes) > 5 else ''}" \
            if classes else "no classes yet"
        bits = [info.get("format", "").upper()] if info.get("format") else []
        if info.get("parameters"):
            bits.append(f"{info['parameters']:,} params")
        reads, tokenizer = card_words(teacher_text(node))
        if reads:  # a text model: what it reads, not its inputs' shapes
            bits.append(reads)
        elif info.get("inputs"):
            bits.append("in " + "×".join(str(d) for d in info["inputs"][0]["shape"][1:]))
        return [first, " · ".join(bits) or base_name(p.get("path")) or "no model file", *contract_words(p),
                *([tokenizer] if tokenizer else [])]
    if node.kind == "strategy":
        return _strategy_summary(with_defaults(StrategySpec, p))
    if node.kind == "prune":
        v = with_defaults(PruneStep, p)
        what = f"{v['method']} {v['sparsity']:.0%}" + (f" · {v['scope']}" if v["method"] == "magnitude" else "")
        return [what, f"then {v['finetune_epochs']} fine-tune epochs"]
    if node.kind == "quantize":
        v = with_defaults(QuantizeStep, p)
        return [f"int8 {v['mode']}" + (f" · {v['calibration_samples']} calibration" if v["mode"] == "static" else ""),
                f"max drop {v['max_accuracy_drop']:g} points"]
    if node.kind == "export":
        v = with_defaults(ExportSpec, {k: x for k, x in p.items() if x != ""})
        return [f"ONNX + report{' + safetensors' if v['safetensors'] else ''}",
                f"to {base_name(v.get('folder')) or 'the run folder'}"]
    return _student_summary(p)


def _student_summary(p: dict) -> list[str]:
    """'MLP 256×2 · 10 classes' (the architecture's `card`), then how it starts and trains."""
    arch = p.get("architecture") or {}
    default_arch = StudentSpec.model_fields["architecture"].default
    kind = arch.get("kind", default_arch.kind)
    member = ARCHITECTURES.get(kind)
    size = card_line(member, arch) if member else "?"
    train = with_defaults(TrainingSpec, p.get("training"))
    run = [f"{train['epochs']} epochs", f"lr {train['lr']:g}", train["optimizer"]]
    start = _init_text(with_defaults(StudentInit, p.get("init")))  # first, so eliding cuts training
    return [f"{kind.upper()} {size} · {len(p.get('classes') or [])} classes",
            " · ".join([start, *run[:2]] if start else run)]


def _strategy_summary(p: dict) -> list[str]:
    """'KD T=4 · α 0.5 · confidence' (the teacher weighting), then the methods on top of KD,
    most telling first. `p`: the strategy with the spec's defaults filled in."""
    weighting = p["teacher_weighting"].replace("_", "-")
    first = f"KD T={p['temperature']:g} · α {p['hard_label_weight']:g} · {weighting}"
    calibration, hints = p.get("calibration"), p.get("hints") or []
    if calibration is not None:
        calibration = with_defaults(CalibrationSpec, calibration)
    bits = ["UHC" if p["partial_classes"] == "renormalize" else "zero-fill",
            "avg logits" if p["combine"] == "average_logits" else "",
            f"{len(hints)} hint{'s' if len(hints) > 1 else ''}" if hints else "",
            "heads" if p["task_heads"] else "",
            f"calib {calibration['labels_per_class']}/class" if calibration else "",
            f"conf {p['confidence_weight']:g}" if p["confidence_weight"] else "",
            "continual" if p.get("previous_student") else ""]
    return [first, " · ".join(b for b in bits if b)]


def _init_text(init: dict) -> str:
    """Where a student's weights start, when not from scratch."""
    kind = init["kind"]
    if kind == "grow":
        return f"grown from {init.get('teacher') or '?'}"
    if kind == "fedavg":
        return "FedAvg of teachers"
    if kind == "weights":
        return f"from {base_name(init.get('path')) or '?'}"
    if kind == "self_supervised":
        epochs = (init.get("pretraining") or {}).get("epochs", 10)
        return f"self-supervised pretraining · {epochs} ep"
    return ""


class PortItem(QGraphicsItem):
    """A connection point on a node: inputs on the left edge, outputs on the right."""

    def __init__(self, node_item: NodeItem, name: str, is_output: bool, y: float):
        super().__init__(node_item)
        self.node_item, self.name, self.is_output = node_item, name, is_output
        self.setPos(NODE_W if is_output else 0.0, y)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CrossCursor)
        self.setToolTip(f"{'output' if is_output else 'input'}: {name} — drag to connect")
        self._hover = False

    def boundingRect(self) -> QRectF:
        r = PORT_R + 4
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        color = QColor(KINDS[self.node_item.node.kind].color)
        painter.setPen(QPen(color.darker(130), 1.5))
        painter.setBrush(color.lighter(150) if self._hover else QColor(theme.current().port))
        painter.drawEllipse(QPointF(0, 0), PORT_R, PORT_R)

    def hoverEnterEvent(self, event):
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event):
        self._hover = False
        self.update()

    def scene_anchor(self) -> QPointF:
        return self.scenePos()


class NodeItem(QGraphicsObject):
    def __init__(self, node: Node):
        super().__init__()
        self.node = node
        self.state, self.reason = OK, ""
        self.live = ""  # what a running training says about this node
        self.warning = ""  # what the engine's checks warn about this node: node.info["check"]
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsScenePositionChanges)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.links: list[LinkItem] = []
        self.lines = summary(node)
        self.height = self._height()
        kind = KINDS[node.kind]
        self.ports: dict[tuple[str, bool], PortItem] = {}
        for i, port in enumerate(kind.inputs):
            y = HEADER_H + 24 + i * 28
            self.ports[(port.name, False)] = PortItem(self, port.name, False, y)
        for port in kind.outputs:
            self.ports[(port.name, True)] = PortItem(self, port.name, True, NODE_H / 2)
        self.setPos(*node.pos)
        self.refresh(node)

    def port(self, name: str, is_output: bool) -> PortItem:
        return self.ports[(name, is_output)]

    def refresh(self, node: Node, state: str | None = None, reason: str | None = None) -> None:
        if node.kind == "teacher" and node.props.get("path") != getattr(self, "_file", None):
            self.live = ""  # what a run or a check said was about the file before
            self._file = node.props.get("path")
        self.node = node
        if state is not None:
            self.state, self.reason = state, reason or ""
        check = node.info.get("check") or {}
        self.warning = f"{check['message']} — {check['hint']}" if check.get("hint") else check.get("message", "")
        self.warning = self.warning or tokenizer_warning(node)
        self.lines = summary(node)
        if self._height() != self.height:
            self.prepareGeometryChange()
            self.height = self._height()
        self._update_tooltip()
        self.update()

    def _update_tooltip(self) -> None:
        """The card's words whole: its state, warning, live status and summary (the card elides)."""
        self.setToolTip(f"{KINDS[self.node.kind].title}: {STATE_WORDS[self.state]}"
                        + (f" — {self.reason}" if self.reason and self.state != OK else "")
                        + (f"\n⚠ {self.warning}" if self.warning else "")
                        + (f"\n{self.live}" if self.live else "")
                        + "".join(f"\n{line}" for line in self.lines))

    def _height(self) -> float:
        """The card's height: room for its summary lines."""
        return NODE_H + LINE_H * max(0, len(self.lines) - 2)

    def set_live(self, text: str) -> None:
        self.live = text
        self._update_tooltip()
        self.update()

    def status_text(self) -> str:
        """What the status line says: a warning, the live state of a run, or the node's state."""
        if self.warning and self.state == OK:
            return f"⚠ {self.warning}"
        if self.live:
            return self.live
        return STATE_WORDS[self.state] if self.state == OK else f"{STATE_WORDS[self.state]}: {self.reason}"

    def status_lines(self) -> list[str]:
        """The status as drawn: wrapped to two lines, the rest elided."""
        left = INPUTS_W if KINDS[self.node.kind].inputs else 12
        metrics = QFontMetrics(pixel_font(QFont(), STATUS_PX))
        return wrap_lines(metrics, self.status_text(), int(NODE_W - left - 16))

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_W + 4, self.height + 4)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        kind = KINDS[self.node.kind]
        color = QColor(kind.color)
        colors = theme.current()
        rect = QRectF(0, 0, NODE_W, self.height)
        painter.setRenderHint(QPainter.Antialiasing)
        border = QColor(ACCENT) if self.isSelected() else STATE_COLORS[self.state] \
            if self.state != OK else STATE_COLORS[INCOMPLETE] if self.warning else QColor(colors.card_border)
        painter.setPen(QPen(border, 2.5 if self.isSelected() or self.state != OK or self.warning else 1.2))
        painter.setBrush(QColor(colors.card))
        painter.drawRoundedRect(rect, 8, 8)
        painter.save()
        clip = QPainterPath()
        clip.addRoundedRect(rect, 8, 8)
        painter.setClipPath(clip)
        painter.fillRect(QRectF(0, 0, NODE_W, HEADER_H), color)
        painter.restore()

        base = QFont(painter.font())
        painter.setFont(pixel_font(base, HEADER_PX, bold=True))
        painter.setPen(QColor("white"))
        painter.drawText(QRectF(10, 0, NODE_W - 20, HEADER_H), Qt.AlignVCenter | Qt.AlignLeft,
                         kind.title.upper())
        dot = STATE_COLORS[self.state]
        painter.setBrush(dot)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.drawEllipse(QPointF(NODE_W - 14, HEADER_H / 2), 5, 5)

        left = INPUTS_W if kind.inputs else 12
        width = NODE_W - left - 14
        painter.setFont(pixel_font(base, TITLE_PX, bold=True))
        painter.setPen(QColor(colors.card_title))
        top = HEADER_H + 4
        painter.drawText(QRectF(left, top, width, TITLE_H), Qt.AlignVCenter | Qt.AlignLeft,
                         self._elide(painter, self.node.title, width - 2))
        painter.setFont(pixel_font(base, LINE_PX))
        painter.setPen(QColor(colors.card_text))
        for i, line in enumerate(self.lines):
            painter.drawText(QRectF(left, top + TITLE_H + i * LINE_H, width, LINE_H),
                             Qt.AlignVCenter | Qt.AlignLeft, self._elide(painter, line, width - 2))
        painter.setPen(theme.state_color(self.state))
        if self.warning and self.state == OK:
            painter.setPen(STATE_COLORS[INCOMPLETE] if colors.dark else STATE_COLORS[INCOMPLETE].darker(140))
        elif self.live:
            painter.setPen(QColor(ACCENT).lighter(140) if colors.dark else QColor(ACCENT))
        painter.setFont(pixel_font(base, STATUS_PX))
        status_top = self.height - 6 - STATUS_LINES * STATUS_H
        for i, line in enumerate(self.status_lines()):
            painter.drawText(QRectF(left, status_top + i * STATUS_H, width, STATUS_H),
                             Qt.AlignVCenter | Qt.AlignLeft, line)
        if kind.inputs:  # input port labels, inside the card beside their ports
            painter.setPen(QColor(colors.card_muted))
            painter.setFont(pixel_font(base, PORT_PX))
            for (name, is_output), port in self.ports.items():
                if not is_output:
                    painter.drawText(QRectF(10, port.y() - 8, INPUTS_W - 14, 16), Qt.AlignVCenter | Qt.AlignLeft,
                                     name)
            painter.setPen(QPen(QColor(colors.card_rule), 1))
            painter.drawLine(QPointF(INPUTS_W - 5, HEADER_H + 6), QPointF(INPUTS_W - 5, self.height - 6))

    @staticmethod
    def _elide(painter: QPainter, text: str, width: float) -> str:
        return painter.fontMetrics().elidedText(text, Qt.ElideRight, int(width))

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemScenePositionHasChanged:
            for link in self.links:
                link.update_path()
        return super().itemChange(change, value)


def link_path(a: QPointF, b: QPointF) -> QPainterPath:
    path = QPainterPath(a)
    dx = max(abs(b.x() - a.x()) * 0.5, 40.0)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


class LinkItem(QGraphicsPathItem):
    def __init__(self, link: Link, src: NodeItem, dst: NodeItem):
        super().__init__()
        self.link, self.src, self.dst = link, src, dst
        self.setFlags(QGraphicsItem.ItemIsSelectable)
        self.setZValue(0)
        self.color = QColor(KINDS[src.node.kind].color)
        self.setToolTip(f"{src.node.title} → {dst.node.title} ({link.dst_port}); select and press Delete to remove")
        src.links.append(self)
        dst.links.append(self)
        self.update_path()

    def update_path(self) -> None:
        a = self.src.port(self.link.src_port, True).scene_anchor()
        b = self.dst.port(self.link.dst_port, False).scene_anchor()
        self.setPath(link_path(a, b))

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        color = self.color.lighter(theme.current().link_lighter)  # brighter on a dark canvas
        pen = QPen(QColor(ACCENT) if self.isSelected() else color, 3.0 if self.isSelected() else 2.2)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path())

    def shape(self) -> QPainterPath:
        from PySide6.QtGui import QPainterPathStroker

        stroker = QPainterPathStroker()
        stroker.setWidth(12)
        return stroker.createStroke(self.path())

    def detach(self) -> None:
        for end in (self.src, self.dst):
            if self in end.links:
                end.links.remove(self)


class RefusalLabel(QGraphicsObject):
    """A reason shown in place when a link is refused; it fades away by itself."""

    WIDTH = 300

    def __init__(self, text: str, at: QPointF):
        super().__init__()
        self.text = text
        self.setPos(at)
        self.setZValue(10)
        metrics = QFontMetrics(QFont())
        box = metrics.boundingRect(QRect(0, 0, self.WIDTH, 1000), int(Qt.TextWordWrap), text)
        self._rect = QRectF(0, 0, box.width() + 18, box.height() + 12)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setFont(QFont())
        painter.setBrush(QBrush(QColor(theme.current().refusal_fill)))
        painter.setPen(QPen(QColor("#d64545"), 1.2))
        painter.drawRoundedRect(self._rect, 6, 6)
        painter.setPen(QColor(theme.current().refusal_text))
        painter.drawText(self._rect.adjusted(9, 6, -9, -6), int(Qt.TextWordWrap | Qt.AlignLeft), self.text)
