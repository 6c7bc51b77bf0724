"""The inspector: a form for the selected node, checked as you type with the spec's own rules.

A value is committed (one undo command) only when the spec accepts it; until then the field
shows what is wrong in red, and the document keeps its last good value.
"""

from __future__ import annotations

import copy
import html

from PySide6.QtCore import Qt
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
    QPushButton,
    QScrollArea,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from engine.text_roles import tokenizer_words
from gui import theme
from gui.document.commands import SetName, SetProps
from gui.document.folder_info import is_folder_node, scan_words
from gui.document.hints import DEFAULT_STUDENT_LAYER, format_hints, parse_hints
from gui.document.hints import FORMAT as HINT_FORMAT
from gui.document.hints import example as example_hint
from gui.document.kinds import KINDS
from gui.document.model import Document, Node, get_in
from gui.document.node_checks import prop_problems
from gui.document.student_size import size_words
from gui.document.text_info import is_text_node, teacher_text, tokenizer_warning
from gui.document.validation import linked_teacher_names, node_status
from gui.panels.folder_view import FolderSection
from gui.panels.form_widgets import LinesEdit, NumberEdit
from gui.panels.schema_form import FormField, apply_change, fields_for
from gui.panels.text_view import TextSection
from gui.theme import STATE_WORDS

__all__ = ["Inspector", "LinesEdit"]


class Inspector(QWidget):
    """Observes the document and the selection; edits go through the undo stack."""

    def __init__(self, doc: Document, undo_stack, parent=None, folders=None, texts=None):
        super().__init__(parent)
        self.doc, self.undo_stack = doc, undo_stack
        self.folders = folders  # gui.folder_scans.FolderScans: an image folder's scan, cancel, classes
        self.texts = texts  # gui.text_previews.TextPreviews: a text file's preview, read again, classes
        self.folder_section: FolderSection | None = None
        self.text_section: TextSection | None = None
        self.setObjectName("inspector")
        self.setAccessibleName("Inspector")
        self.node_id: str | None = None
        self.editors: dict[tuple[str, ...], tuple[FormField, QWidget, QLabel]] = {}
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
        theme.follow(self, lambda w: w._rebuild(), now=False)  # its labels' colours are set as it builds

    # building
    def show_node(self, node_id: str | None) -> None:
        self.node_id = node_id if node_id in self.doc.nodes else None
        self._rebuild()

    def _clear(self) -> None:
        _delete_layout(self.layout_)
        self.editors = {}
        self.folder_section = None
        self.text_section = None
        self.size = None

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
        text = teacher_text(node)
        if text:  # how a text teacher reads the texts, or what it lacks: first, where it is seen
            self._show_tokenizer(node, text)
        self.size = None
        if node.kind == "student":  # parameters and training memory, following every edit
            self.size = QLabel()
            self.size.setObjectName("student-size")
            self.size.setWordWrap(True)
            self.size.setStyleSheet(f"color: {theme.current().text};")
            self.layout_.addWidget(self.size)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for f in fields:
            if f.kind == "heading":  # a section of the spec: its fields follow
                heading = QLabel(f"<b>{f.label}</b>")
                heading.setObjectName(f"heading-{f.dotted}")
                heading.setToolTip(f.help)
                heading.setContentsMargins(0, 8, 0, 0)
                form.addRow(heading)
                continue
            editor = self._editor(f, node)
            error = QLabel()
            error.setObjectName(f"error-{f.dotted}")
            error.setStyleSheet(f"color: {theme.current().error};")
            error.setWordWrap(True)
            error.hide()
            box = QVBoxLayout()
            box.setSpacing(1)
            box.addWidget(editor)
            if f.kind == "hints":
                note = QLabel(self._hints_note())
                note.setObjectName(f"note-{f.dotted}")
                note.setWordWrap(True)
                note.setStyleSheet(f"color: {theme.current().muted}; font-size: 8pt;")
                box.addWidget(note)
            box.addWidget(error)
            label = QLabel(f.label)
            tip = "\n".join(x for x in (f.help, f.bounds.words() and f"range: {f.bounds.words()}") if x)
            if tip:
                label.setToolTip(tip)
                for widget in (editor, *editor.findChildren(QLineEdit)):
                    widget.setToolTip(tip)
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
        if is_folder_node(node) and node.props.get("path"):
            self._build_folder_extras(node)
        if is_text_node(node) and node.props.get("path"):
            self._build_text_extras(node)
        self.layout_.addStretch(1)
        self._update_status(node)

    def _build_folder_extras(self, node: Node) -> None:
        student = self.doc.student()
        folders = self.folders
        node_id = node.id
        self.folder_section = FolderSection(
            node, (student.props.get("classes") or []) if student is not None else None,
            cancel=lambda: folders.cancel(node_id) if folders else None,
            rescan=lambda: folders.rescan(node_id) if folders else None,
            use_classes=lambda: folders.use_classes(node_id) if folders else None)
        self.layout_.addWidget(self.folder_section)

    def _build_text_extras(self, node: Node) -> None:
        student = self.doc.student()
        texts = self.texts
        node_id = node.id
        self.text_section = TextSection(
            node, (student.props.get("classes") or []) if student is not None else None,
            reread=lambda: texts.read(node_id) if texts else None,
            use_classes=lambda: texts.use_classes(node_id) if texts else None)
        self.layout_.addWidget(self.text_section)

    def _build_pipeline_form(self) -> None:
        self.layout_.addWidget(QLabel("<b style='font-size:13pt'>Pipeline</b>"))
        form = QFormLayout()
        name = QLineEdit(self.doc.name)
        name.setObjectName("field-pipeline-name")
        name.setAccessibleName("Pipeline name")
        error = QLabel()
        error.setStyleSheet(f"color: {theme.current().error};")
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
        help_text.setStyleSheet(f"color: {theme.current().muted};")
        self.layout_.addWidget(help_text)
        self.layout_.addStretch(1)

    def _hints_note(self) -> str:
        teachers = linked_teacher_names(self.doc)
        student = self.doc.student()
        checked = (student.info.get("checked_layers") or {}) if student is not None else {}
        if student is not None and checked.get("architecture") == student.props.get("architecture"):
            layers = "Student layers: " + ", ".join(
                f"{x['name']} {x['shape']}" for x in checked.get("layers") or []) + "."
        else:
            layers = "Check Pipeline lists the student's layers with their shapes."
        return (f"one per line: {HINT_FORMAT} (default student layer: {DEFAULT_STUDENT_LAYER}). "
                f"Teachers: {', '.join(teachers) or 'none linked yet'}. {layers}")

    def _editor(self, f: FormField, node: Node) -> QWidget:
        value = get_in(node.props, f.path)
        name = f"field-{f.dotted}"
        if f.kind == "choice":
            w = QComboBox()
            # a long choice ("auto (on for large students on a GPU)") must not widen the form
            # past the panel: the box takes the width the panel gives, the list shows it all
            w.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(8)
            for choice in f.choices:
                w.addItem(f.choice_text(choice), choice)
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
            line = NumberEdit(self._text(f, value), f.bounds, f.kind == "int") \
                if f.kind in ("int", "float") else QLineEdit(self._text(f, value))
            if isinstance(line, NumberEdit):
                line.stepped.connect(lambda text, f=f: self._commit_text(f, text))
            if f.placeholder or (f.optional and f.kind not in ("path", "folder")):
                line.setPlaceholderText(f.placeholder or "(none)")
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

    def _show(self, f: FormField, widget: QWidget, value) -> None:
        """Put a value (unset: the spec's default) into its editor without committing it."""
        if value is None and f.kind != "section":
            value = None if f.optional else f.default
        widget.blockSignals(True)
        if isinstance(widget, QComboBox):
            value = "" if value is None else value
            widget.setCurrentIndex(max(0, f.choices.index(value) if value in f.choices else 0))
        elif isinstance(widget, QCheckBox):
            widget.setChecked(value is not None if f.kind == "section" else bool(value))
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
        text = teacher_text(node)
        if info and not info.get("error"):
            shape = lambda io: "×".join(str(d) for d in io.get("shape", []))  # noqa: E731
            lines = [f"format: {info.get('format', '?')}, {info.get('bytes', 0):,} bytes",
                     f"parameters: {info.get('parameters', 0):,}"]
            roles = {i["name"]: i.get("role") for i in (text or {}).get("inputs") or []}
            lines += [f"input {i['name']}: {shape(i)} {i.get('dtype', '')}".rstrip()
                      + (f" ← {roles[i['name']] or 'role unknown'}" if i["name"] in roles else "")
                      for i in info.get("inputs", [])]
            lines += [f"output {o['name']}: {shape(o)}" for o in info.get("outputs", [])]
            if info.get("classes_from"):
                lines.append(f"classes: read from the {info['classes_from']}")
            if info.get("sha256"):
                lines.append(f"sha256: {info['sha256'][:16]}…")
            lines += [f"⚠ {w}" for w in info.get("warnings") or []]
            reasons = (info.get("proposed") or {}).get("reasons") or []
            if reasons:
                lines.append("What the file says (filled in where you had set nothing):")
                lines += [f"• {r}" for r in reasons]
            label = QLabel("<b>File</b><br>" + "<br>".join(html.escape(line) for line in lines))  # names from the file
            label.setObjectName("teacher-file-info")
            label.setWordWrap(True)
            label.setStyleSheet(f"color: {theme.current().text};")
            self.layout_.addWidget(label)
        check = info.get("check") if info else None
        if check:
            self._show_check(node, check)

    def _show_tokenizer(self, node: Node, text: dict) -> None:
        """How a text teacher reads the texts: its tokenizer (and where it was found), raw text,
        or the warning that it needs a tokenizer and has none, with the fix."""
        tok = text.get("tokenizer")
        label = QLabel()
        label.setObjectName("teacher-tokenizer")
        label.setWordWrap(True)
        label.setTextFormat(Qt.PlainText)
        warning = tokenizer_warning(node)
        if warning:
            label.setText(f"⚠ This teacher {warning}.")
            label.setStyleSheet(theme.note_style())
        else:
            where = f"\n{tok['from']}: {tok['path']}" if tok else ""
            label.setText(f"Text teacher · {tokenizer_words(text)}{where}")
            label.setStyleSheet(theme.info_style())
        label.setToolTip("The teacher reads each text through its own tokenizer: input.tokenizer, "
                         "else the tokenizer.json beside its model file")
        self.layout_.addWidget(label)

    def _show_check(self, node: Node, check: dict) -> None:
        """The engine's warning about this teacher, and the settings it suggests, one click away."""
        label = QLabel(f"<b>⚠ Check before training</b><br>{html.escape(check['message'])}"
                       + (f"<br>→ {html.escape(check['hint'])}" if check.get("hint") else ""))
        label.setObjectName("teacher-check")
        label.setWordWrap(True)
        label.setStyleSheet(theme.note_style())
        self.layout_.addWidget(label)
        fix, field = check.get("fix") or {}, check.get("field", "")
        if not fix:
            return
        button = QPushButton("Apply the suggested settings")
        button.setObjectName("apply-check-fix")
        button.setToolTip("Sets " + ", ".join(f"{k} = {v}" for k, v in fix.items())
                          + "; undo reverts it. Check the pipeline again to confirm.")
        button.clicked.connect(lambda: self._apply_fix(node.id, field, fix))
        self.layout_.addWidget(button)

    def _apply_fix(self, node_id: str, field: str, fix: dict) -> None:
        """The suggested settings as one undoable edit; the warning goes until the next check."""
        node = self.doc.nodes.get(node_id)
        if node is None:
            return
        props = copy.deepcopy(node.props)
        target = props
        for key in [k for k in field.split("]", 1)[-1].split(".") if k]:  # teachers[0].input -> input
            target = target.setdefault(key, {})
        for key, value in fix.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        self.undo_stack.push(SetProps(self.doc, node_id, props, "suggested settings"))
        self.doc.set_info(node_id, {k: v for k, v in self.doc.nodes[node_id].info.items() if k != "check"})

    # values
    @staticmethod
    def _text(f: FormField, value) -> str:
        if value is None:
            return ""
        if f.kind == "list":
            return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        if f.kind == "hints":
            return format_hints(value)
        if f.kind == "float":
            return f"{value:g}" if isinstance(value, (int, float)) else str(value)
        return str(value)

    def _parse(self, f: FormField, text: str):
        """(value, error): the typed value of a text field, or what is wrong with the text."""
        if f.kind == "hints":
            return parse_hints(text, linked_teacher_names(self.doc))
        text = text.strip()
        if f.optional and not text:
            return None, None
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
            return _parse_list(f, text)
        if f.optional:
            return (text or None), None
        return text, None

    def _problem_for(self, node: Node, f: FormField, value) -> str | None:
        trial = Node(node.id, node.kind, apply_change(node, f, value), node.pos, node.info)
        for where, message in prop_problems(trial):
            if where == f.dotted or where.startswith(f.dotted + ".") or f.dotted.startswith(where + "."):
                return message
        if node.kind == "teacher" and f.path == ("name",):
            if any(t.id != node.id and t.props.get("name") == value for t in self.doc.of_kind("teacher")):
                return "another teacher has this name; give each teacher its own"
        return None

    def _check(self, f: FormField, text: str) -> None:
        node = self.doc.nodes.get(self.node_id)
        if node is None or f.path not in self.editors:
            return
        value, error = self._parse(f, text)
        if error is None:
            error = self._problem_for(node, f, value)
        label = self.editors[f.path][2]
        label.setText(error or "")
        label.setVisible(bool(error))
        if self.size is not None and error is None:  # the size as typed, before it is committed
            self.size.setText(size_words(self.doc, Node(node.id, node.kind, apply_change(node, f, value),
                                                         node.pos, node.info)))

    def _commit_text(self, f: FormField, text: str) -> None:
        value, error = self._parse(f, text)
        if error is None:
            self._commit(f, value)
        else:
            self._check(f, text)

    def _commit(self, f: FormField, value) -> None:
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

    def _browse(self, f: FormField, line: QLineEdit) -> None:
        if f.kind == "folder":
            path = QFileDialog.getExistingDirectory(self, f"Choose the {f.label.lower()}", line.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, f"Choose {f.label.lower()}", line.text(), f.file_filter)
        if path:
            line.setText(path)
            self._commit(f, path)

    # observing
    def _shape_of(self, node: Node, fields: list[FormField]) -> tuple:
        """What the form's layout depends on; the form is rebuilt only when it changes."""
        student = self.doc.student()
        extras = (tuple(node.props.get("classes") or []), tuple(sorted((node.props.get("mapping") or {}).items())),
                  tuple(student.props.get("classes") or []) if student else None,
                  repr(sorted(node.info.items()))) if node.kind == "teacher" else ()
        if is_text_node(node):
            student_classes = tuple(student.props.get("classes") or []) if student else None
            extras = (node.props.get("path"), student_classes, repr(sorted(node.info.items())))
        if is_folder_node(node):  # the scan's count alone changes the status line in place
            student_classes = tuple(student.props.get("classes") or []) if student else None
            extras = (node.props.get("path"), student_classes,
                      repr(sorted((k, v) for k, v in node.info.items() if k != "scanning")))
        hints = self._hints_note() if any(f.kind == "hints" for f in fields) else ""
        return (node.id, tuple((f.path, f.kind, tuple(f.choices)) for f in fields), hints, extras)

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
        if self.folder_section is not None:
            self.folder_section.status.setText(scan_words(node.info))
        self._update_status(node)

    def _update_status(self, node: Node) -> None:
        state, reason = node_status(self.doc, node)
        color = theme.state_color(state).name()
        text = STATE_WORDS[state] + ("" if state == "ok" else f": {reason}")
        self.status.setText(f"<span style='color:{color}'>● {text}</span>")
        if self.size is not None:
            self.size.setText(size_words(self.doc, node))


def _parse_list(f: FormField, text: str):
    """(value, error) of a list typed as text: names split at commas; numbers at commas or
    spaces, so that '224, 224', '224 224' and '0.5,0.5' all read."""
    if f.item == "text":
        return [part.strip() for part in text.split(",") if part.strip()], None
    parts = [p for p in text.replace(",", " ").replace(";", " ").split() if p]
    number = int if f.item == "int" else float
    try:
        return [number(p) for p in parts], None
    except ValueError:
        example = "224, 224" if f.item == "int" else "0.485, 0.456, 0.406"
        return None, f"write {'whole ' if f.item == 'int' else ''}numbers separated by commas, e.g. {example}"


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
