"""The inspector's forms, the node cards and the document's checks read the spec itself: every
architecture and data source the spec's unions hold is offered with its own fields, defaults,
bounds and help, with no list of them in the app."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QWidget

from engine.errors import InputError, _union_tags
from engine.spec import Architecture, CalibrationSpec, DataSource, StrategySpec, TrainingSpec, parse_spec
from gui.canvas.drops import data_format, data_node
from gui.canvas.items import summary
from gui.document.commands import AddNode
from gui.document.kinds import KINDS, default_props
from gui.document.model import Document, Node
from gui.document.schema import describe
from gui.panels.form_widgets import NumberEdit
from gui.panels.inspector import Inspector


def union_members(union) -> list[type]:
    """The classes of a discriminated union, read with typing alone (not the app's reader)."""
    return list(typing.get_args(typing.get_args(union)[0]))


def tag(cls, field: str) -> str:
    return cls.model_fields[field].default


@pytest.fixture
def form(qtbot):
    doc, stack = Document(), QUndoStack()
    inspector = Inspector(doc, stack)
    qtbot.addWidget(inspector)
    inspector.show()

    def show(kind: str, **props) -> Node:
        node = Node(doc.new_id(kind), kind, {**default_props(kind), **props}, (0, 0))
        stack.push(AddNode(doc, node))
        inspector.show_node(node.id)
        return node

    inspector.add = show
    inspector.stack = stack
    return inspector


def field(inspector, cls, dotted):
    return inspector.findChild(cls, f"field-{dotted}")


def choose(inspector, dotted, value):
    combo = field(inspector, QComboBox, dotted)
    assert combo is not None, dotted
    index = combo.findData(value)
    assert index >= 0, f"{value!r} is not offered by {dotted}"
    combo.setCurrentIndex(index)


def combo_values(combo: QComboBox) -> list:
    return [combo.itemData(i) for i in range(combo.count())]


def assert_shows_spec_fields(inspector, cls, prefix: str, skip: str, props: dict):
    """Each field of the spec class has its editor, showing the spec's default and bounds."""
    for name, info in cls.model_fields.items():
        if name == skip:
            continue
        dotted = f"{prefix}{name}"
        s = describe((name,), info.annotation, info, cls)
        if s.type == "model":  # a section: its fields follow under their own names
            assert inspector.findChild(QLabel, f"heading-{dotted}") is not None, dotted
            continue
        widget = inspector.findChild(QWidget, f"field-{dotted}")
        assert widget is not None, f"{cls.__name__}.{name} has no editor"
        if s.type in ("int", "float"):
            assert isinstance(widget, NumberEdit)
            bounds = {type(m).__name__.lower(): getattr(m, type(m).__name__.lower()) for m in info.metadata}
            assert {k: v for k, v in vars(widget.bounds).items() if v is not None} == bounds, dotted
            if not info.is_required():  # an optional number without default (workers) shows empty
                assert (float(widget.text()) if info.default is not None else widget.text()) == \
                    (info.default if info.default is not None else ""), dotted
        elif s.type == "choice":
            literal = [a for a in typing.get_args(info.annotation) if a is not type(None)]
            literal = typing.get_args(literal[0]) if typing.get_origin(literal[0]) is typing.Literal else literal
            assert [v for v in combo_values(widget) if v] == list(literal), dotted
            if not info.is_required() and info.default is not None:
                assert widget.currentData() == info.default, dotted
        elif s.type == "bool":
            assert widget.isChecked() == info.default, dotted
        if info.description:
            assert info.description in widget.toolTip(), dotted


@pytest.mark.parametrize("cls", union_members(Architecture), ids=lambda c: c.__name__)
def test_every_architecture_is_offered_with_its_fields_and_defaults(form, cls):
    student = form.add("student")
    assert tag(cls, "kind") in combo_values(field(form, QComboBox, "architecture.kind"))
    choose(form, "architecture.kind", tag(cls, "kind"))
    props = form.doc.nodes[student.id].props
    assert props["architecture"] == cls().model_dump(mode="json")  # the spec's defaults filled in
    assert_shows_spec_fields(form, cls, "architecture.", "kind", props)
    first, _ = summary(form.doc.nodes[student.id])
    assert first.startswith(tag(cls, "kind").upper())


@pytest.mark.parametrize("cls", union_members(DataSource), ids=lambda c: c.__name__)
def test_every_data_source_is_offered_with_its_fields_and_defaults(form, cls, tmp_path):
    data = form.add("data")
    fmt = tag(cls, "format")
    assert fmt in combo_values(field(form, QComboBox, "format"))
    choose(form, "format", fmt)
    props = form.doc.nodes[data.id].props
    assert props["format"] == fmt and props["split"] == cls.model_fields["split"].default.model_dump()
    assert_shows_spec_fields(form, cls, "", "format", props)
    for name in [n for n, i in cls.model_fields.items() if i.annotation in (Path, Path | None)]:
        line = field(form, QLineEdit, name)
        assert line is not None and form.findChild(QWidget, f"browse-{name}") is not None
    for pattern in cls.file_patterns:  # a dropped file of the format becomes this data source
        file = tmp_path / pattern.replace("*", "x")
        assert data_format(file) == fmt
        dropped = data_node(form.doc, file, (0, 0)).props
        assert dropped["format"] == fmt and str(file.resolve()) in dropped.values()
    assert KINDS["data"].description.count(fmt) >= 1


def test_switching_the_architecture_fills_the_chosen_classes_defaults(form):
    student = form.add("student")
    members = union_members(Architecture)
    width = field(form, NumberEdit, f"architecture.{next(iter(members[0].model_fields.keys() - {'kind'}))}")
    width.setText("7")
    width.editingFinished.emit()
    for cls in members[::-1] + members:
        choose(form, "architecture.kind", tag(cls, "kind"))
        assert form.doc.nodes[student.id].props["architecture"] == cls().model_dump(mode="json")


def test_choices_and_help_are_the_specs(form):
    form.add("strategy")
    combo = field(form, QComboBox, "teacher_weighting")
    info = StrategySpec.model_fields["teacher_weighting"]
    assert combo_values(combo) == list(typing.get_args(info.annotation))
    assert combo.toolTip().startswith(info.description)
    section = field(form, QCheckBox, "calibration")
    help_text = section.toolTip().replace("mixture of experts", "mixture-of-experts")  # what the user reads
    assert "mixture-of-experts gate" in help_text and "logit scale" not in help_text
    section.setChecked(True)
    assert form.doc.nodes[form.node_id].props["calibration"] == CalibrationSpec().model_dump()


def test_the_learning_rate_shown_and_given_is_the_specs_default(form):
    student = form.add("student")
    default = TrainingSpec.model_fields["lr"].default
    assert student.props["training"]["lr"] == default
    lr = field(form, NumberEdit, "training.lr")
    assert float(lr.text()) == default
    assert f"lr {default:g}" in summary(student)[1]
    bare = Node("s", "student", {"classes": ["a", "b"]})  # nothing set: the spec's defaults
    assert f"lr {default:g}" in summary(bare)[1]
    assert summary(bare)[1].startswith(f"{TrainingSpec.model_fields['epochs'].default} epochs")


def test_a_card_follows_an_edit_and_a_number_steps_within_its_bounds(form, qtbot):
    student = form.add("student")
    choose(form, "architecture.kind", "mlp")
    width = field(form, NumberEdit, "architecture.width")
    width.setText("64")
    width.editingFinished.emit()
    assert "64×" in summary(form.doc.nodes[student.id])[0]
    depth = field(form, NumberEdit, "architecture.depth")
    depth.setText("0")
    depth.editingFinished.emit()
    depth = field(form, NumberEdit, "architecture.depth")
    depth.setFocus()
    qtbot.keyClick(depth, Qt.Key_Down)  # the spec's ge=0: stays at 0
    assert form.doc.nodes[student.id].props["architecture"]["depth"] == 0
    qtbot.keyClick(depth, Qt.Key_Up)
    assert form.doc.nodes[student.id].props["architecture"]["depth"] == 1
    assert "64×1" in summary(form.doc.nodes[student.id])[0]


def test_error_paths_name_no_union_member(demo_dict):
    assert _union_tags()["data"] == {tag(c, "format") for c in union_members(DataSource)}
    assert _union_tags()["architecture"] == {tag(c, "kind") for c in union_members(Architecture)}
    demo_dict["student"]["architecture"]["width"] = -1
    demo_dict["compression"] = [{"kind": "prune", "sparsity": 5}]
    with pytest.raises(InputError) as err:
        parse_spec(demo_dict)
    paths = {p.path for p in err.value.problems}
    assert {"student.architecture.width", "compression[0].sparsity"} <= paths


def test_a_card_with_a_section_set_in_part_reads_the_rest_from_the_spec():
    node = Node("d", "data", {"format": "builtin", "name": "digits", "split": {"seed": 3}})
    assert summary(node)[1] == "split val 0.15 · test 0.15"
    node.props["split"] = {"val": "a lot", "test": 0.1}  # text being typed: no card figures, no crash
    assert summary(node)[1] == ""


def test_a_number_that_is_not_finite_or_not_whole_is_not_stepped(form, qtbot):
    form.add("student")
    choose(form, "architecture.kind", "mlp")
    for text in ("inf", "1e400", "nan", "2.5"):
        depth = field(form, NumberEdit, "architecture.depth")
        depth.setText(text)
        depth.setFocus()
        qtbot.keyClick(depth, Qt.Key_Up)  # no OverflowError, no guess
        assert depth.text() == text


def test_the_csv_table_options_render_and_edit(form):
    from engine.spec import CsvData

    data = form.add("data")
    choose(form, "format", "csv")

    def edit(name, text):
        line = field(form, QLineEdit, name)
        assert line is not None, name
        line.setText(text)
        line.textEdited.emit(text)
        line.editingFinished.emit()
        return form.doc.nodes[data.id].props.get(name)

    assert edit("path", "/data/wine.csv") == "/data/wine.csv"
    assert edit("columns", "alcohol, region ,hue") == ["alcohol", "region", "hue"]  # list[str]: by commas
    assert edit("categorical", "region") == ["region"]
    assert edit("label_column", "kind") == "kind"
    assert edit("delimiter", ";") == ";"
    missing = field(form, QComboBox, "missing")
    assert combo_values(missing) == ["refuse", "mean", "median", "zero"] and missing.currentData() == "refuse"
    choose(form, "missing", "mean")
    props = form.doc.nodes[data.id].props
    settings = CsvData.model_validate(props)
    assert (settings.columns, settings.categorical, settings.missing, settings.delimiter) == \
        (["alcohol", "region", "hue"], ["region"], "mean", ";")
    assert edit("delimiter", ";;") == ";"  # one character: refused with the spec's reason, not stored
    assert "at most 1 character" in form.findChild(QLabel, "error-delimiter").text()
    assert edit("delimiter", "") is None and edit("columns", "") is None  # none: detected / all columns


def test_a_data_card_names_its_separate_test_file():
    node = Node("d", "data", {"format": "npz", "path": "/x/transfer.npz", "test_file": "/x/labelled-test.npz",
                              "use_labels": False})
    assert summary(node)[1] == "split val 0.15 · test labelled-test.npz · no labels"
    node = Node("i", "data", {"format": "idx", "images": "/x/train-images.gz", "test_images": "/x/t10k-images.gz"})
    assert summary(node)[1] == "split val 0.15 · test t10k-images.gz"


def test_compile_offers_auto_on_and_off_and_the_step_settings_read_plainly(form):
    student = form.add("student")
    combo = field(form, QComboBox, "training.compile")
    assert [combo.itemText(i) for i in range(combo.count())] == ["auto (on for large students on a GPU)", "on", "off"]
    assert combo.currentText().startswith("auto")  # the spec's none
    choose(form, "training.compile", False)
    assert form.doc.nodes[student.id].props["training"]["compile"] is False
    choose(form, "training.compile", "")
    assert form.doc.nodes[student.id].props["training"].get("compile") is None
    assert field(form, QLineEdit, "training.accumulate").accessibleName() == "Grad. accumulation"
    box = field(form, QCheckBox, "training.activation_checkpointing")
    assert box.accessibleName() == "Checkpoint activations" and not box.isChecked()



def test_the_gradient_norms_switch_is_offered_from_the_spec_alone(form):
    """training.gradient_norms has no code in the app: a check box with the spec's default and help."""
    student = form.add("student")
    box = field(form, QCheckBox, "training.gradient_norms")
    assert box.accessibleName() == "Gradient norms" and not box.isChecked()
    assert TrainingSpec.model_fields["gradient_norms"].description in box.toolTip()
    box.setChecked(True)
    assert form.doc.nodes[student.id].props["training"]["gradient_norms"] is True


def test_self_supervised_initial_weights_show_their_settings_and_edit_them(form, qtbot):
    from engine.spec import SelfSupervisedSpec, StudentInit

    student = form.add("student")
    assert field(form, QCheckBox, "init.pretraining") is None  # scratch: no pretraining
    choose(form, "init.kind", "self_supervised")
    props = lambda: form.doc.nodes[student.id].props  # noqa: E731
    qtbot.waitUntil(lambda: field(form, QCheckBox, "init.pretraining") is not None
                    and field(form, QCheckBox, "init.pretraining").isVisibleTo(form), timeout=3000)
    section = field(form, QCheckBox, "init.pretraining")
    assert "SimCLR" in section.toolTip()
    section.setChecked(True)
    defaults = SelfSupervisedSpec().model_dump(exclude_none=True)  # no hidden share: auto
    assert props()["init"] == {"kind": "self_supervised", "pretraining": defaults}
    qtbot.waitUntil(lambda: field(form, QWidget, "init.pretraining.epochs") is not None, timeout=3000)
    # an MLP student: auto is SimCLR, whose settings show; masked prediction's hidden share does not
    assert_shows_spec_fields(form, SelfSupervisedSpec, "init.pretraining.", "mask_ratio", props())
    assert field(form, QWidget, "init.pretraining.mask_ratio") is None
    epochs = field(form, NumberEdit, "init.pretraining.epochs")
    epochs.setText("25")
    epochs.editingFinished.emit()
    assert props()["init"]["pretraining"]["epochs"] == 25
    assert StudentInit.model_validate(props()["init"]).pretraining.epochs == 25
    assert "self-supervised pretraining · 25 ep" in summary(form.doc.nodes[student.id])[1]
    choose(form, "architecture.kind", "vit")  # a ViT: auto is masked prediction, with its own setting
    qtbot.waitUntil(lambda: field(form, QWidget, "init.pretraining.mask_ratio") is not None, timeout=3000)
    assert field(form, QWidget, "init.pretraining.temperature") is None
    assert field(form, QWidget, "init.pretraining.crop_scale") is None
    choose(form, "init.pretraining.method", "simclr")  # a ViT may take SimCLR: its settings come back
    qtbot.waitUntil(lambda: field(form, QWidget, "init.pretraining.temperature") is not None, timeout=3000)
    assert field(form, QWidget, "init.pretraining.mask_ratio") is None
    choose(form, "architecture.kind", "mlp")
    qtbot.waitUntil(lambda: field(form, QComboBox, "init.pretraining.method") is not None, timeout=3000)
    choose(form, "init.pretraining.method", "masked")  # an MLP has no tokens: said under Method, not stored
    error = form.findChild(QLabel, "error-init.pretraining.method")
    assert error is not None and error.isVisibleTo(form) and "a mlp student has neither" in error.text()
    assert props()["init"]["pretraining"]["method"] == "simclr"
    choose(form, "init.kind", "scratch")  # the settings go with the kind that has them
    assert "pretraining" not in props()["init"] and field(form, QCheckBox, "init.pretraining") is None
    StudentInit.model_validate(props()["init"])
