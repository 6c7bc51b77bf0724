"""The document model, its rules and its undo commands, without widgets."""

import copy

from gui.document.commands import AddLink, MoveNodes, RemoveItems, SetName, SetProps
from gui.document.links import _makes_cycle, check_link
from gui.document.model import Document, Link
from gui.document.validation import ERROR, INCOMPLETE, OK, node_status
from tests.gui.helpers import add
from tests.helpers import TEACHERS


def snapshot(doc: Document):
    return (doc.name, {k: (n.kind, copy.deepcopy(n.props), n.pos) for k, n in doc.nodes.items()},
            list(doc.links))


def teacher_props(name, classes, **kw):
    return {"name": name, "path": str(TEACHERS / "digits-0-4.onnx"), "classes": classes, **kw}


def test_links_follow_the_port_types(doc, stack):
    data, student = add(doc, stack, "data"), add(doc, stack, "student")
    teacher = add(doc, stack, "teacher", **teacher_props("t", ["0", "1"]))
    assert check_link(doc, Link(data.id, "data", student.id, "data")) is None
    assert "takes a teacher, not a data source" in check_link(doc, Link(data.id, "data", student.id, "teachers"))
    assert "output (right side) to an input" in check_link(doc, Link(student.id, "data", data.id, "data"))
    assert "itself" in check_link(doc, Link(student.id, "x", student.id, "data"))
    stack.push(AddLink(doc, Link(data.id, "data", student.id, "data")))
    other = add(doc, stack, "data")
    assert "already has a data input" in check_link(doc, Link(other.id, "data", student.id, "data"))
    assert "already connected" in check_link(doc, Link(data.id, "data", student.id, "data"))
    assert check_link(doc, Link(teacher.id, "teaches", student.id, "teachers")) is None


def test_a_second_student_is_refused_and_marked(doc, stack):
    first, second = add(doc, stack, "student"), add(doc, stack, "student")
    teacher = add(doc, stack, "teacher", **teacher_props("t", ["0"]))
    reason = check_link(doc, Link(teacher.id, "teaches", second.id, "teachers"))
    assert "exactly one student" in reason
    assert node_status(doc, doc.nodes[second.id])[0] == ERROR
    assert check_link(doc, Link(teacher.id, "teaches", first.id, "teachers")) is None


def test_teacher_classes_must_map_into_the_student(doc, stack):
    student = add(doc, stack, "student")
    teacher = add(doc, stack, "teacher", **teacher_props("words", ["seven", "8"]))
    reason = check_link(doc, Link(teacher.id, "teaches", student.id, "teachers"))
    assert "does not know: seven" in reason and "inspector" in reason
    stack.push(SetProps(doc, teacher.id, {**teacher.props, "mapping": {"seven": "7"}}, "mapping"))
    assert check_link(doc, Link(teacher.id, "teaches", student.id, "teachers")) is None


def test_data_shape_must_fit_teachers_and_student(doc, stack):
    student = add(doc, stack, "student", architecture={"kind": "cnn", "channels": 8, "depth": 2})
    teacher = add(doc, stack, "teacher", **teacher_props("t", ["0"]))
    doc.set_info(teacher.id, {"inputs": [{"name": "x", "shape": ["batch", 1, 8, 8]}]})
    stack.push(AddLink(doc, Link(teacher.id, "teaches", student.id, "teachers")))
    table = add(doc, stack, "data", format="csv", path="/x.csv")
    assert "cnn student needs image data" in check_link(doc, Link(table.id, "data", student.id, "data"))
    images = add(doc, stack, "data", format="idx", images="/x-idx3-ubyte")
    doc.set_info(images.id, {"sample_shape": [1, 28, 28]})
    reason = check_link(doc, Link(images.id, "data", student.id, "data"))
    assert "takes samples of 64 values" in reason and "784" in reason
    digits = add(doc, stack, "data")
    assert check_link(doc, Link(digits.id, "data", student.id, "data")) is None


def test_cycle_detection(doc, stack):
    a, b = add(doc, stack, "student"), add(doc, stack, "student")
    doc.add_link(Link(a.id, "out", b.id, "in"))
    assert _makes_cycle(doc, Link(b.id, "out", a.id, "in"))
    assert not _makes_cycle(doc, Link(a.id, "out", b.id, "in2"))


def test_node_states_say_what_is_missing_or_wrong(doc, stack):
    student = add(doc, stack, "student")
    assert node_status(doc, doc.nodes[student.id]) == (INCOMPLETE, "connect a data source")
    empty = add(doc, stack, "teacher")
    assert node_status(doc, doc.nodes[empty.id])[0] == INCOMPLETE
    data = add(doc, stack, "data")
    assert node_status(doc, doc.nodes[data.id]) == (INCOMPLETE, "connect it to the student")
    stack.push(AddLink(doc, Link(data.id, "data", student.id, "data")))
    state, reason = node_status(doc, doc.nodes[student.id])
    assert state == INCOMPLETE and reason.startswith("connect at least one teacher, or learn from labels")
    teacher = add(doc, stack, "teacher", **teacher_props("t", ["0", "1", "2", "3", "4"]))
    stack.push(AddLink(doc, Link(teacher.id, "teaches", student.id, "teachers")))
    assert node_status(doc, doc.nodes[student.id]) == (OK, "ready")
    assert node_status(doc, doc.nodes[teacher.id]) == (OK, "ready")
    bad = copy.deepcopy(doc.nodes[student.id].props)
    bad["training"]["lr"] = -1
    stack.push(SetProps(doc, student.id, bad, "training.lr"))
    state, reason = node_status(doc, doc.nodes[student.id])
    assert state == ERROR and reason.startswith("training.lr:")
    doc.set_info(teacher.id, {"error": "not a valid ONNX model"})
    assert node_status(doc, doc.nodes[teacher.id]) == (ERROR, "not a valid ONNX model")
    weights = add(doc, stack, "teacher", **teacher_props("w", ["0"], path=str(TEACHERS / "w.safetensors")))
    assert node_status(doc, doc.nodes[weights.id]) == (INCOMPLETE, "choose the architecture its weights belong to")


def test_every_command_undoes_and_redoes(doc, stack):
    states = [snapshot(doc)]
    student = add(doc, stack, "student")
    states.append(snapshot(doc))
    data = add(doc, stack, "data")
    states.append(snapshot(doc))
    stack.push(AddLink(doc, Link(data.id, "data", student.id, "data")))
    states.append(snapshot(doc))
    stack.push(MoveNodes(doc, {data.id: ((0, 0), (100, 50)), student.id: ((0, 0), (400, 50))}))
    states.append(snapshot(doc))
    props = {**doc.nodes[student.id].props, "classes": ["a", "b"]}
    stack.push(SetProps(doc, student.id, props, "classes"))
    states.append(snapshot(doc))
    stack.push(SetName(doc, "renamed"))
    states.append(snapshot(doc))
    stack.push(RemoveItems(doc, [data.id]))  # takes its link with it
    assert doc.links == [] and data.id not in doc.nodes
    states.append(snapshot(doc))
    for expected in reversed(states[:-1]):
        stack.undo()
        assert snapshot(doc) == expected
    for expected in states[1:]:
        stack.redo()
        assert snapshot(doc) == expected


def test_removing_a_link_keeps_link_order_on_undo(doc, stack):
    student = add(doc, stack, "student")
    teachers = [add(doc, stack, "teacher", **teacher_props(f"t{i}", ["0"])) for i in range(3)]
    for t in teachers:
        stack.push(AddLink(doc, Link(t.id, "teaches", student.id, "teachers")))
    order = list(doc.links)
    stack.push(RemoveItems(doc, [], [order[1]]))
    assert doc.links == [order[0], order[2]]
    stack.undo()
    assert doc.links == order


def test_typing_in_one_field_is_one_undo_step(doc, stack):
    strategy = add(doc, stack, "strategy")
    for t in (1.0, 2.0, 3.0):
        stack.push(SetProps(doc, strategy.id, {**doc.nodes[strategy.id].props, "temperature": t}, "temperature"))
    stack.undo()
    assert doc.nodes[strategy.id].props["temperature"] == 4.0


def test_undoing_a_delete_keeps_which_student_is_the_pipelines(doc, stack):
    first = add(doc, stack, "student")
    add(doc, stack, "student")
    stack.push(RemoveItems(doc, [first.id]))
    stack.undo()
    assert doc.student().id == first.id and list(doc.nodes)[0] == first.id


def test_two_teachers_with_one_name_are_an_error(doc, stack):
    a = add(doc, stack, "teacher", **teacher_props("same", ["0"]))
    b = add(doc, stack, "teacher", **teacher_props("same", ["1"]))
    for node in (a, b):
        state, reason = node_status(doc, doc.nodes[node.id])
        assert state == ERROR and "also named 'same'" in reason


def test_a_data_source_without_its_file_is_incomplete(doc, stack):
    data = add(doc, stack, "data", format="npz", path="")
    assert node_status(doc, doc.nodes[data.id]) == (INCOMPLETE, "choose the npz file")
