"""The inspector: a form for the selected node, checked as you type with the spec's own rules.

A value is committed (one undo command) only when the spec accepts it; until then the field
shows what is wrong in red, and the document keeps its last good value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from engine.spec import CalibrationSpec, CnnArch, MlpArch
from gui.document.commands import SetName, SetProps
from gui.document.hints import DEFAULT_STUDENT_LAYER, format_hints, parse_hints
from gui.document.hints import FORMAT as HINT_FORMAT
from gui.document.hints import example as example_hint
from gui.document.kinds import KINDS
from gui.document.model import Document, Node, get_in, set_in
from gui.document.node_checks import prop_problems
from gui.document.validation import linked_teacher_names, node_status
from gui.theme import STATE_COLORS, STATE_WORDS


@dataclass
class Field:
    path: tuple[str, ...]  # where the value lives in the node's properties
    label: str
    kind: str  # text, path, folder, choice, int, float, bool, list, section, hints
    choices: list[str] = field(default_factory=list)  # "" is the choice of no value
    help: str = ""
    file_filter: str = ""
    optional: bool = False  # text and paths: an empty text means no value (None)
    none_label: str = "(none)"  # how a choice shows "" (no value)
    section: dict | None = None  # section: what a ticked box puts at `path` (unticked: None)
    note: str = ""  # shown under the editor, always visible

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def fields_for(node: Node, teachers: list[str] = ()) -> list[Field]:
    """The inspector's fields for a node; `teachers`: the names of the teachers linked to the
    student, offered where a setting names a teacher."""
    p = node.props
    if node.kind == "data":
        fmt = p.get("format", "builtin")
        out = [Field(("format",), "Format", "choice", ["builtin", "npz", "csv", "idx"],
                     "builtin: a dataset shipped with the app; npz/csv/idx: your files")]
        if fmt == "builtin":
            out.append(Field(("name",), "Dataset", "choice", ["digits"], "8×8 handwritten digits"))
        elif fmt in ("npz", "csv"):
            out.append(Field(("path",), "File", "path", file_filter=f"Data (*.{fmt})"))
            if fmt == "csv":
                out.append(Field(("label_column",), "Label column", "text", optional=True,
                                 help="the column with class labels; empty: unlabeled"))
        else:
            out += [Field(("images",), "Images (IDX)", "path", file_filter="IDX (*)"),
                    Field(("labels",), "Labels (IDX)", "path", file_filter="IDX (*)", optional=True,
                          help="empty: unlabeled; teachers alone supply targets")]
        out += [Field(("split", "val"), "Validation fraction", "float"),
                Field(("split", "test"), "Test fraction", "float"),
                Field(("split", "seed"), "Split seed", "int"),
                Field(("use_labels",), "Use labels", "bool",
                      help="off: learn from the teachers alone")]
        return out
    if node.kind == "teacher":
        out = [Field(("name",), "Name", "text"),
               Field(("path",), "Model file", "path",
                     file_filter="Models (*.onnx *.safetensors *.pt *.pth)"),
               Field(("format",), "Format", "choice", ["", "onnx", "safetensors", "pytorch", "torchscript"],
                     "empty: from the file's extension; torchscript only when you trust the file",
                     none_label="(from extension)"),
               Field(("classes",), "Classes", "list",
                     help="the teacher's class names in its output order, separated by commas"),
               Field(("weight",), "Weight", "float", help="used when teacher weighting is 'fixed'"),
               Field(("outputs",), "Outputs", "choice", ["logits", "probabilities"])]
        if p.get("format") == "torchscript":
            out.append(Field(("trusted",), "Trusted (runs its code)", "bool",
                             "TorchScript holds code that runs when the file is loaded. Tick this "
                             "only for a file from a source you trust."))
        if p.get("format") in ("safetensors", "pytorch") or str(p.get("path", "")).endswith(
                (".safetensors", ".pt", ".pth")):
            out += _arch_fields(("architecture",), p.get("architecture") or {})
        return out
    if node.kind == "strategy":
        return _strategy_fields(p, teachers)
    if node.kind == "prune":
        out = [Field(("method",), "Method", "choice", ["magnitude", "structured"],
                     "magnitude: zero the smallest weights; structured: remove whole units or "
                     "channels, so the layers really shrink"),
               Field(("sparsity",), "Sparsity", "float", help="fraction removed, e.g. 0.5")]
        if p.get("method", "magnitude") == "magnitude":
            out.append(Field(("scope",), "Scope", "choice", ["layer", "global"],
                             "layer: the same fraction in every layer; global: the smallest weights "
                             "of the whole model"))
        return out + [Field(("finetune_epochs",), "Fine-tune epochs", "int",
                            help="distillation from the same teachers after pruning, to win back accuracy"),
                      Field(("finetune_lr",), "Fine-tune learning rate", "float")]
    if node.kind == "quantize":
        out = [Field(("mode",), "Mode", "choice", ["dynamic", "static"],
                     "dynamic: weights int8, activations on the fly; static: activation ranges "
                     "calibrated on training samples (fastest)")]
        if p.get("mode") == "static":
            out.append(Field(("calibration_samples",), "Calibration samples", "int"))
        return out + [Field(("max_accuracy_drop",), "Max accuracy drop (points)", "float",
                            help="if int8 loses more test accuracy than this, its file is not kept; "
                            "the fp32 file always is")]
    if node.kind == "export":
        return [Field(("folder",), "Folder", "folder",
                      help="where the files go; empty: 'export' inside the run folder"),
                Field(("safetensors",), "Also safetensors weights", "bool")]
    t = ("training",)
    return [Field(("classes",), "Classes", "list", help="the student's class names, comma-separated"),
            *_arch_fields(("architecture",), p.get("architecture") or {}),
            *_init_fields(p.get("init") or {}, teachers),
            Field(t + ("epochs",), "Epochs", "int"),
            Field(t + ("batch_size",), "Batch size", "int"),
            Field(t + ("optimizer",), "Optimizer", "choice", ["adamw", "adam", "sgd"]),
            Field(t + ("lr",), "Learning rate", "float"),
            Field(t + ("weight_decay",), "Weight decay", "float"),
            Field(t + ("schedule",), "Schedule", "choice", ["cosine", "constant"]),
            Field(t + ("seed",), "Seed", "int"),
            Field(t + ("device",), "Device", "choice", ["auto", "cpu", "cuda", "mps"]),
            Field(t + ("precision",), "Precision", "choice", ["auto", "fp32", "bf16", "fp16"]),
            Field(t + ("compile",), "Compile (torch.compile)", "bool",
                  help="faster training steps after a compile of tens of seconds")]


def _strategy_fields(p: dict, teachers: list[str]) -> list[Field]:
    out = [Field(("temperature",), "Temperature", "float",
                 help="Hinton KD (Hinton, Vinyals & Dean 2015): softens the teachers' and the "
                 "student's outputs; 2–8 is usual"),
           Field(("hard_label_weight",), "Label weight α", "float",
                 help="share of cross-entropy on the data's labels (0–1), when labels exist. "
                 "α = 1 with no teachers: a label-only run, e.g. to train an expert or an oracle"),
           Field(("teacher_weighting",), "Teacher weighting", "choice",
                 ["uniform", "fixed", "confidence", "entropy", "selective", "label_aware"],
                 "how much each teacher counts. uniform: all equal; fixed: each teacher's Weight; "
                 "confidence / entropy: per sample, by how sure each teacher is (no labels needed); "
                 "selective: per sample, only the least ambiguous teacher (selective learning, Shen "
                 "et al. ICCV 2019); label_aware: per sample, by each teacher's cross-entropy on the "
                 "label (CA-MKD-style, Zhang et al. 2022; needs labels)"),
           Field(("partial_classes",), "Partial teachers", "choice", ["renormalize", "zero_fill"],
                 "teachers that know only some classes. renormalize: the student's probabilities "
                 "are renormalized over each teacher's classes (UHC, Vongkulbhisal et al. CVPR "
                 "2019); zero_fill: unknown classes count as probability 0 (the naive baseline)"),
           Field(("combine",), "Combine teachers", "choice", ["per_teacher", "average_logits"],
                 "per_teacher: a weighted sum of one KD term per teacher; average_logits: one KD "
                 "term against the teachers' averaged logits (ensemble distillation as in FedDF, "
                 "Lin et al. NeurIPS 2020; every teacher must know every class)"),
           Field(("calibration",), "Calibrate with a few labels", "section",
                 help="a few labelled samples per class (every other label stays hidden) fit each "
                 "teacher's logit scale and offset, so that teachers whose classes do not overlap "
                 "can be merged into one distribution (UHC, Vongkulbhisal et al. CVPR 2019)",
                 section=CalibrationSpec().model_dump(mode="json"))]
    if p.get("calibration") is not None:
        out += [Field(("calibration", "labels_per_class"), "Labels per class", "int",
                      help="labelled training samples per class used to calibrate the teachers"),
                Field(("calibration", "weight"), "Calibration weight", "float",
                      help="weight of cross-entropy on those few labels in the student's loss")]
    out.append(Field(("hints",), "Feature hints", "hints",
                     help="FitNets (Romero et al. ICLR 2015): a student layer, through a learned "
                     "adapter, matches a teacher's intermediate features. Teacher layers: ONNX "
                     "tensor names or zoo module names (distill-engine inspect --layers lists them)",
                     note=f"one per line: {HINT_FORMAT} (default student layer: "
                     f"{DEFAULT_STUDENT_LAYER}). Teachers: {', '.join(teachers) or 'none linked yet'}"))
    if p.get("hints"):
        out.append(Field(("hint_weight",), "Hint weight", "float", help="weight of the hint losses"))
    out.append(Field(("task_heads",), "Task head per teacher", "bool",
                     help="a head per teacher on the student's shared trunk learns that teacher's "
                     "own outputs, beside the unified head (multi-task; the export keeps only the "
                     "unified head)"))
    if p.get("task_heads"):
        out.append(Field(("task_head_weight",), "Task head weight", "float"))
    out.append(Field(("confidence_weight",), "Confidence loss", "float",
                     help="weak-to-strong auxiliary confidence loss (Burns et al. 2023): the share "
                     "(0–1) of cross-entropy on the student's own hardened predictions, so a strong "
                     "student can overrule weak teachers; 0: off"))
    if (p.get("confidence_weight") or 0) > 0:
        out.append(Field(("confidence_warmup",), "Confidence warm-up", "float",
                         help="fraction of the training steps over which the confidence share "
                         "ramps up from 0"))
    out.append(Field(("previous_student",), "Previous student", "path", optional=True,
                     file_filter="Weights (*.safetensors)",
                     help="continual distillation: an earlier run's student.safetensors, kept as an "
                     "extra teacher so old knowledge is not forgotten (learning without forgetting, "
                     "Li & Hoiem 2016) and used as the starting weights; empty: none"))
    return out


def _init_fields(init: dict, teachers: list[str]) -> list[Field]:
    out = [Field(("init", "kind"), "Initial weights", "choice", ["scratch", "grow", "fedavg", "weights"],
                 "scratch: random. grow: widen and deepen one small mlp teacher (zoo weights) so the "
                 "student starts out computing what it computes (Net2Net, Chen et al. ICLR 2016). "
                 "fedavg: the average of the teachers' weights, which must share the student's "
                 "architecture (McMahan et al. 2017; FedDF's start, Lin et al. 2020). weights: a "
                 ".safetensors file, e.g. an earlier run's student")]
    if init.get("kind") == "grow":
        current = init.get("teacher")
        names = ["", *teachers] + ([current] if current and current not in teachers else [])
        out.append(Field(("init", "teacher"), "Grow from teacher", "choice", names,
                         "one of the teachers linked to this student", none_label="(choose a teacher)"))
    elif init.get("kind") == "weights":
        out.append(Field(("init", "path"), "Weights file", "path", optional=True,
                         file_filter="Weights (*.safetensors)",
                         help="a .safetensors file; tensors whose shapes match are copied"))
    return out


def _arch_fields(at: tuple[str, ...], arch: dict) -> list[Field]:
    out = [Field(at + ("kind",), "Architecture", "choice", ["mlp", "cnn"])]
    if arch.get("kind") == "cnn":
        out.append(Field(at + ("channels",), "Channels", "int"))
    else:
        out.append(Field(at + ("width",), "Width", "int"))
    out += [Field(at + ("depth",), "Depth", "int"), Field(at + ("dropout",), "Dropout", "float")]
    return out


ARCH_DEFAULTS = {"mlp": MlpArch().model_dump(mode="json"), "cnn": CnnArch().model_dump(mode="json")}


def apply_change(node: Node, f: Field, value) -> dict:
    """The node's properties after this edit, with what a change of kind implies."""
    props = copy.deepcopy(node.props)
    if f.path == ("format",) and node.kind == "data":
        keep = {k: props[k] for k in ("split", "use_labels") if k in props}
        props = {"format": value, **({"name": "digits"} if value == "builtin" else {}), **keep}
        if value in ("npz", "csv"):
            props["path"] = ""
        elif value == "idx":
            props["images"] = ""
        return props
    if f.path == ("format",) and node.kind == "teacher":
        set_in(props, f.path, value)
        if value == "torchscript":
            props.setdefault("trusted", False)  # never trusted without the user's tick
        else:
            props.pop("trusted", None)
        return props
    if f.path[-1] == "kind" and f.path[:-1] == ("architecture",):
        set_in(props, f.path[:-1], dict(ARCH_DEFAULTS[value]))
        return props
    if f.path == ("init", "kind"):  # what another kind needs is chosen afresh
        props["init"] = {"kind": value}
        return props
    set_in(props, f.path, value)
    return props


class Inspector(QWidget):
    """Observes the document and the selection; edits go through the undo stack."""

    def __init__(self, doc: Document, undo_stack, parent=None):
        super().__init__(parent)
        self.doc, self.undo_stack = doc, undo_stack
        self.setObjectName("inspector")
        self.setAccessibleName("Inspector")
        self.node_id: str | None = None
        self.editors: dict[tuple[str, ...], tuple[Field, QWidget, QLabel]] = {}
        self._signature = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setMinimumWidth(300)
        scroll.setFrameShape(QFrame.NoFrame)
        outer.addWidget(scroll)
        self.body = QWidget()
        scroll.setWidget(self.body)
        self.layout_ = QVBoxLayout(self.body)
        doc.changed.connect(self._document_changed)
        self.show_node(None)

    # building
    def show_node(self, node_id: str | None) -> None:
        self.node_id = node_id if node_id in self.doc.nodes else None
        self._rebuild()

    def _clear(self) -> None:
        _delete_layout(self.layout_)
        self.editors = {}

    def _rebuild(self) -> None:
        self._clear()
        node = self.doc.nodes.get(self.node_id) if self.node_id else None
        if node is None:
            self._signature = None
            self._build_pipeline_form()
            return
        fields = fields_for(node, linked_teacher_names(self.doc))
        self._signature = self._shape_of(node, fields)
        title = QLabel(f"<b style='font-size:13pt'>{KINDS[node.kind].title}</b>")
        self.layout_.addWidget(title)
        self.status = QLabel()
        self.status.setObjectName("inspector-status")
        self.status.setWordWrap(True)
        self.layout_.addWidget(self.status)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for f in fields:
            editor = self._editor(f, node)
            error = QLabel()
            error.setObjectName(f"error-{f.dotted}")
            error.setStyleSheet("color: #c62828;")
            error.setWordWrap(True)
            error.hide()
            box = QVBoxLayout()
            box.setSpacing(1)
            box.addWidget(editor)
            if f.note:
                note = QLabel(f.note)
                note.setObjectName(f"note-{f.dotted}")
                note.setWordWrap(True)
                note.setStyleSheet("color: #6b7280; font-size: 8pt;")
                box.addWidget(note)
            box.addWidget(error)
            label = QLabel(f.label)
            if f.help:
                label.setToolTip(f.help)
                editor.setToolTip(f.help)
            if f.kind == "section":  # the box names what it turns on, across the form
                form.addRow(box)
            elif f.kind in ("hints", "path", "folder"):  # long texts get the form's whole width
                form.addRow(label)
                form.addRow(box)
            else:
                form.addRow(label, box)
            self.editors[f.path] = (f, editor, error)
        self.layout_.addLayout(form)
        if node.kind == "teacher":
            self._build_teacher_extras(node)
        self.layout_.addStretch(1)
        self._update_status(node)

    def _build_pipeline_form(self) -> None:
        self.layout_.addWidget(QLabel("<b style='font-size:13pt'>Pipeline</b>"))
        form = QFormLayout()
        name = QLineEdit(self.doc.name)
        name.setObjectName("field-pipeline-name")
        name.setAccessibleName("Pipeline name")
        error = QLabel()
        error.setStyleSheet("color: #c62828;")
        error.hide()

        def commit():
            text = name.text().strip()
            if not text:
                error.setText("the pipeline needs a name")
                error.show()
                return
            error.hide()
            if text != self.doc.name:
                self.undo_stack.push(SetName(self.doc, text))

        name.editingFinished.connect(commit)
        box = QVBoxLayout()
        box.addWidget(name)
        box.addWidget(error)
        form.addRow("Name", box)
        self.layout_.addLayout(form)
        counts = {k: len(self.doc.of_kind(k)) for k in KINDS}
        help_text = QLabel(
            f"{counts['teacher']} teachers, {counts['student']} student, {counts['data']} data "
            f"source, {counts['strategy']} strategy, {counts['prune'] + counts['quantize']} "
            f"compression steps, {counts['export']} export.<br><br>Drag node kinds from the palette, or "
            "model files from your file manager, onto the canvas. Connect an output (right) to an "
            "input (left). Select a node to edit it here.")
        help_text.setWordWrap(True)
        help_text.setStyleSheet("color: #4b5563;")
        self.layout_.addWidget(help_text)
        self.layout_.addStretch(1)

    def _editor(self, f: Field, node: Node) -> QWidget:
        value = get_in(node.props, f.path)
        name = f"field-{f.dotted}"
        if f.kind == "choice":
            w = QComboBox()
            for choice in f.choices:
                w.addItem(choice or f.none_label, choice)
            w.currentIndexChanged.connect(lambda _i, f=f, w=w: self._commit(f, w.currentData()))
        elif f.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda checked, f=f: self._commit(f, checked))
        elif f.kind == "section":
            w = QCheckBox(f.label)
            w.toggled.connect(lambda on, f=f: self._commit(f, copy.deepcopy(f.section) if on else None))
        elif f.kind == "hints":
            w = LinesEdit()
            w.setPlaceholderText(f"e.g. {example_hint(linked_teacher_names(self.doc))}")
            w.textChanged.connect(lambda f=f, w=w: self._check(f, w.toPlainText()))
            w.editingFinished.connect(lambda f=f, w=w: self._commit_text(f, w.toPlainText()))
        else:
            line = QLineEdit(self._text(f, value))
            line.textEdited.connect(lambda text, f=f: self._check(f, text))
            line.editingFinished.connect(lambda f=f, line=line: self._commit_text(f, line.text()))
            if f.kind in ("path", "folder"):
                w = QWidget()
                row = QHBoxLayout(w)
                row.setContentsMargins(0, 0, 0, 0)
                row.addWidget(line, 1)
                browse = QPushButton("Browse…")
                browse.setObjectName(f"browse-{f.dotted}")
                browse.clicked.connect(lambda _=False, f=f, line=line: self._browse(f, line))
                row.addWidget(browse)
                line.setObjectName(name)
                line.setAccessibleName(f.label)
                w.setObjectName(f"{name}-row")
                return w
            w = line
        w.setObjectName(name)
        w.setAccessibleName(f.label)
        self._show(f, w, value)
        return w

    def _show(self, f: Field, widget: QWidget, value) -> None:
        """Put a value into its editor without committing it."""
        widget.blockSignals(True)
        if isinstance(widget, QComboBox):
            widget.setCurrentIndex(max(0, f.choices.index(value) if value in f.choices else 0))
        elif isinstance(widget, QCheckBox):
            widget.setChecked(value is not None if f.kind == "section" else bool(True if value is None else value))
        elif isinstance(widget, LinesEdit):
            widget.setPlainText(self._text(f, value))
        else:
            widget.setText(self._text(f, value))
        widget.blockSignals(False)

    def _build_teacher_extras(self, node: Node) -> None:
        student = self.doc.student()
        classes = node.props.get("classes") or []
        if student is not None and classes:
            self.layout_.addWidget(QLabel("<b>Class mapping</b> — teacher class → student class"))
            table = QTableWidget(len(classes), 2)
            table.setObjectName("mapping-table")
            table.setAccessibleName("Class mapping")
            table.setHorizontalHeaderLabels(["teacher", "student"])
            table.verticalHeader().hide()
            table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
            mapping = node.props.get("mapping") or {}
            targets = student.props.get("classes") or []
            for row, c in enumerate(classes):
                table.setCellWidget(row, 0, QLabel(f" {c}"))
                combo = QComboBox()
                combo.setObjectName(f"mapping-{c}")
                combo.addItem("— not mapped —", None)
                for t in targets:
                    combo.addItem(t, t)
                current = mapping.get(c, c)
                combo.setCurrentIndex(targets.index(current) + 1 if current in targets else 0)
                combo.currentIndexChanged.connect(
                    lambda _i, c=c, combo=combo: self._set_mapping(c, combo.currentData()))
                table.setCellWidget(row, 1, combo)
            table.setFixedHeight(min(32 + 30 * len(classes), 260))
            self.layout_.addWidget(table)
        info = node.info
        if info and not info.get("error"):
            shape = lambda io: "×".join(str(d) for d in io.get("shape", []))  # noqa: E731
            lines = [f"format: {info.get('format', '?')}, {info.get('bytes', 0):,} bytes",
                     f"parameters: {info.get('parameters', 0):,}"]
            lines += [f"input {i['name']}: {shape(i)}" for i in info.get("inputs", [])]
            lines += [f"output {o['name']}: {shape(o)}" for o in info.get("outputs", [])]
            if info.get("sha256"):
                lines.append(f"sha256: {info['sha256'][:16]}…")
            label = QLabel("<b>File</b><br>" + "<br>".join(lines))
            label.setObjectName("teacher-file-info")
            label.setWordWrap(True)
            label.setStyleSheet("color: #374151;")
            self.layout_.addWidget(label)

    # values
    @staticmethod
    def _text(f: Field, value) -> str:
        if value is None:
            return ""
        if f.kind == "list":
            return ", ".join(value)
        if f.kind == "hints":
            return format_hints(value)
        if f.kind == "float":
            return f"{value:g}" if isinstance(value, (int, float)) else str(value)
        return str(value)

    def _parse(self, f: Field, text: str):
        """(value, error): the typed value of a text field, or what is wrong with the text."""
        if f.kind == "hints":
            return parse_hints(text, linked_teacher_names(self.doc))
        text = text.strip()
        if f.kind == "int":
            try:
                return int(text), None
            except ValueError:
                return None, "write a whole number"
        if f.kind == "float":
            try:
                return float(text), None
            except ValueError:
                return None, "write a number, e.g. 0.001"
        if f.kind == "list":
            return [part.strip() for part in text.split(",") if part.strip()], None
        if f.optional:
            return (text or None), None
        return text, None

    def _problem_for(self, node: Node, f: Field, value) -> str | None:
        trial = Node(node.id, node.kind, apply_change(node, f, value), node.pos, node.info)
        for where, message in prop_problems(trial):
            if where == f.dotted or where.startswith(f.dotted + ".") or f.dotted.startswith(where + "."):
                return message
        if node.kind == "teacher" and f.path == ("name",):
            if any(t.id != node.id and t.props.get("name") == value for t in self.doc.of_kind("teacher")):
                return "another teacher has this name; give each teacher its own"
        return None

    def _check(self, f: Field, text: str) -> None:
        node = self.doc.nodes.get(self.node_id)
        if node is None or f.path not in self.editors:
            return
        value, error = self._parse(f, text)
        if error is None:
            error = self._problem_for(node, f, value)
        label = self.editors[f.path][2]
        label.setText(error or "")
        label.setVisible(bool(error))

    def _commit_text(self, f: Field, text: str) -> None:
        value, error = self._parse(f, text)
        if error is None:
            self._commit(f, value)
        else:
            self._check(f, text)

    def _commit(self, f: Field, value) -> None:
        node = self.doc.nodes.get(self.node_id)
        if node is None:
            return
        if f.kind == "choice" and value == "":
            value = None
        error = self._problem_for(node, f, value)
        if f.path in self.editors:
            label = self.editors[f.path][2]
            label.setText(error or "")
            label.setVisible(bool(error))
        if error:
            return
        new = apply_change(node, f, value)
        if new == node.props:
            return
        self.undo_stack.push(SetProps(self.doc, node.id, new, f.dotted))

    def _set_mapping(self, teacher_class: str, target: str | None) -> None:
        node = self.doc.nodes.get(self.node_id)
        if node is None:
            return
        new = copy.deepcopy(node.props)
        mapping = dict(new.get("mapping") or {})
        if target is None or target == teacher_class:
            mapping.pop(teacher_class, None)
        else:
            mapping[teacher_class] = target
        new["mapping"] = mapping
        if new != node.props:
            self.undo_stack.push(SetProps(self.doc, node.id, new, "mapping"))

    def _browse(self, f: Field, line: QLineEdit) -> None:
        if f.kind == "folder":
            path = QFileDialog.getExistingDirectory(self, f"Choose the {f.label.lower()}", line.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, f"Choose {f.label.lower()}", line.text(), f.file_filter)
        if path:
            line.setText(path)
            self._commit(f, path)

    # observing
    def _shape_of(self, node: Node, fields: list[Field]) -> tuple:
        """What the form's layout depends on; the form is rebuilt only when it changes."""
        student = self.doc.student()
        extras = (tuple(node.props.get("classes") or []), tuple(sorted((node.props.get("mapping") or {}).items())),
                  tuple(student.props.get("classes") or []) if student else None,
                  repr(sorted(node.info.items()))) if node.kind == "teacher" else ()
        return (node.id, tuple((f.path, tuple(f.choices), f.note) for f in fields), extras)

    def _document_changed(self) -> None:
        node = self.doc.nodes.get(self.node_id) if self.node_id else None
        if self.node_id and node is None:
            self.show_node(None)
            return
        if node is None:  # the pipeline form: its name and counts follow the document
            name = self.body.findChild(QLineEdit, "field-pipeline-name")
            if name is None or not name.hasFocus():
                self._rebuild()
            return
        fields = fields_for(node, linked_teacher_names(self.doc))
        if self._shape_of(node, fields) != self._signature:
            focus = self.focusWidget()
            focused_name = focus.objectName() if focus is not None else ""
            self._rebuild()
            if focused_name:
                again = self.body.findChild(QWidget, focused_name)
                if again is not None:
                    again.setFocus()
            return
        for path, (f, editor, error) in self.editors.items():
            widget = editor.findChild(QLineEdit) if f.kind in ("path", "folder") else editor
            if widget.hasFocus():
                continue
            self._show(f, widget, get_in(node.props, path))
            error.hide()
        self._update_status(node)

    def _update_status(self, node: Node) -> None:
        state, reason = node_status(self.doc, node)
        color = STATE_COLORS[state].name()
        text = STATE_WORDS[state] + ("" if state == "ok" else f": {reason}")
        self.status.setText(f"<span style='color:{color}'>● {text}</span>")


class LinesEdit(QPlainTextEdit):
    """A few lines of text that, like a line edit, says when editing is finished (focus out)."""

    editingFinished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.NoWrap)
        lines = self.fontMetrics().lineSpacing()
        self.setFixedHeight(4 * lines + 14)

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.editingFinished.emit()


def _delete_layout(layout) -> None:
    """Empty a layout: its widgets leave the form at once and are deleted later."""
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget()
        if widget is not None:
            widget.setParent(None)
            widget.deleteLater()
        elif item.layout():
            _delete_layout(item.layout())
