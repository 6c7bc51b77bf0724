"""Feature hints (FitNets) as text, one per line: `teacher:layer -> student_layer`.

The teacher's name comes before the first ':', so a layer may itself hold ':' (ONNX tensor
names such as `dense/Relu:0`). `-> student_layer` may be left out: the spec's default, the
student's features before its head ('body'), is used.
"""

from __future__ import annotations

from engine.spec import HintSpec

FORMAT = "teacher:layer -> student_layer"
DEFAULT_STUDENT_LAYER = HintSpec.model_fields["student_layer"].default


def example(teachers: list[str] = ()) -> str:
    return f"{teachers[0] if teachers else 'expert-a'}:body.1 -> body.1"


def format_hints(hints: list[dict]) -> str:
    return "\n".join(f"{h.get('teacher', '')}:{h.get('teacher_layer', '')} -> "
                     f"{h.get('student_layer', DEFAULT_STUDENT_LAYER)}" for h in hints or [])


def parse_hints(text: str, teachers: list[str] = ()) -> tuple[list[dict] | None, str | None]:
    """(hints, None), or (None, what is wrong with which line and how to write it)."""
    hints = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            hint, error = _parse_line(line.strip())
            if error:
                return None, (f"hint line {number} ('{line.strip()}'): {error}; write {FORMAT}, "
                              f"e.g. '{example(teachers)}'")
            hints.append(hint)
    return hints, None


def _parse_line(line: str) -> tuple[dict | None, str | None]:
    source, arrow, student_layer = line.partition("->")
    student_layer = student_layer.strip()
    if arrow and not student_layer:
        return None, "the student layer after '->' is missing"
    if "->" in student_layer:
        return None, "one '->' per line"
    teacher, colon, layer = source.partition(":")
    if not colon:
        return None, "a ':' must separate the teacher's name from its layer"
    if not teacher.strip():
        return None, "the teacher's name before ':' is missing"
    if not layer.strip():
        return None, "the teacher's layer after ':' is missing"
    return {"teacher": teacher.strip(), "teacher_layer": layer.strip(),
            "student_layer": student_layer or DEFAULT_STUDENT_LAYER}, None
