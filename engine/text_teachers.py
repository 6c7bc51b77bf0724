"""Text teachers: ONNX text classifiers fed the raw texts, each through its own tokenizer.

Other distillation tools give every teacher the student's token ids, so teachers with another
vocabulary cannot teach; here each teacher reads the texts as it was trained to. What each input
of the model takes is its *role*, read from the spec (`teachers[i].input.roles`) or from the
input's name and type:

- `text`: the raw strings (a scikit-learn pipeline exported with skl2onnx: TF-IDF + a linear
  model takes a string tensor [N] or [N, 1]);
- `ids`: token ids from the teacher's tokenizer (`input.tokenizer`, or a tokenizer.json beside
  the model file), cut at `input.max_length` (else the input's fixed length, the tokenizer's
  own, 512) and padded to the batch's longest text (or the fixed length);
- `mask`: 1 for tokens, 0 for padding; `type_ids`: 0 (one segment); `positions`: 0, 1, 2, ….

Any number of inputs with any names works, as long as each has a role; an input whose role
cannot be read is refused by name, with the roles to choose from. A batch's texts are sorted by
length before the model sees them, so short texts are not padded to long ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.spec import TeacherSpec
from engine.teacher_base import OnnxTeacher, Teacher, onnx_session
from engine.text_roles import TOKEN_ROLES, guess_role
from engine.tokenizer import TextTokenizer, read_tokenizer

INPUT_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
                "tensor(double)": np.float64, "tensor(bool)": np.bool_}
DEFAULT_MAX_LENGTH = 512


def text_teacher(spec: TeacherSpec, student_classes: list[str], where: str, fmt: str, threads: int) -> Teacher:
    if fmt != "onnx":
        raise InputError.one(f"{where}.path", f"teacher '{spec.name}' is a {fmt} file, and text "
                             "teachers are ONNX files that read texts (with their tokenizer.json)",
                             "export the text model to ONNX (torch.onnx.export, skl2onnx for "
                             "scikit-learn, optimum for transformers)", "shape_mismatch")
    return TextOnnxTeacher(spec, student_classes, where, threads)


class TextAdapter:
    """A batch of texts → the model's named inputs."""

    fields = "input.max_length, input.roles, input.tokenizer"  # what a failing model most likely needs

    def __init__(self, inputs: list, roles: dict[str, str], tokenizer: TextTokenizer | None,
                 max_length: int, fixed_length: int | None, name: str):
        self.inputs, self.roles, self.tokenizer, self.name = inputs, roles, tokenizer, name
        self.max_length, self.fixed_length = max_length, fixed_length
        self.pad_id = tokenizer.pad_id if tokenizer is not None and tokenizer.pad_id is not None else 0
        self.notes: list[str] = []
        self.out_shape = (max_length,)

    @property
    def bytes_per_sample(self) -> int:
        return 2 * 8 * self.max_length * max(1, len(self.inputs))

    def __call__(self, texts: np.ndarray) -> dict[str, np.ndarray]:
        texts = [str(t) for t in texts]
        ids = mask = None
        if self.tokenizer is not None:
            seqs = self.tokenizer.encode(texts, self.max_length)
            width = self.fixed_length or max(1, max(len(s) for s in seqs))
            ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(seqs), width), dtype=np.int64)
            for i, s in enumerate(seqs):
                s = s[:width]  # a tokenizer adds its special tokens even past a tiny max_length
                ids[i, :len(s)], mask[i, :len(s)] = s, 1
        feeds = {}
        for inp in self.inputs:
            role = self.roles[inp.name]
            if role == "text":
                strings = np.asarray(texts, dtype=object)
                feeds[inp.name] = strings.reshape(-1, 1) if len(inp.shape) == 2 else strings
                continue
            value = {"ids": ids, "mask": mask, "type_ids": None if ids is None else np.zeros_like(ids),
                     "positions": None if ids is None else np.broadcast_to(np.arange(ids.shape[1]), ids.shape)}[role]
            feeds[inp.name] = np.ascontiguousarray(value, dtype=INPUT_DTYPES[inp.type])
        return feeds

    def describe(self) -> str:
        words = {"ids": "token ids", "mask": "attention mask", "type_ids": "type ids (0)",
                 "positions": "positions", "text": "the raw texts"}
        parts = [f"{name} ← {words[role]}" for name, role in self.roles.items()]
        if self.tokenizer is not None:
            parts.append(f"tokenizer {Path(self.tokenizer.source).name}, up to {self.max_length} tokens")
        return " · ".join(parts)

    @property
    def key(self) -> str:
        import hashlib

        tok = hashlib.sha256(self.tokenizer.json.encode()).hexdigest() if self.tokenizer else None
        return json.dumps([self.roles, tok, self.max_length, self.fixed_length])


class TextOnnxTeacher(OnnxTeacher):
    """An ONNX text classifier; `predict` takes an object array of texts."""

    def __init__(self, spec: TeacherSpec, student_classes: list[str], where: str, threads: int):
        Teacher.__init__(self, spec, student_classes, where)
        self.session, self.metadata, self.output_name = onnx_session(spec, where, threads)
        inputs = self.session.get_inputs()
        roles = self._roles(inputs, spec, where)
        token_inputs = [i for i in inputs if roles[i.name] in TOKEN_ROLES]
        tokenizer = self._tokenizer(spec, where) if token_inputs else None
        if token_inputs and "ids" not in [roles[i.name] for i in token_inputs]:
            raise InputError.one(f"{where}.input.roles", f"teacher '{spec.name}' takes "
                                 f"{', '.join(i.name for i in token_inputs)} but no input of token ids",
                                 "give the role ids to the input that takes the token ids")
        fixed = {i.shape[1] for i in token_inputs if len(i.shape) == 2 and isinstance(i.shape[1], int)
                 and i.shape[1] > 0}
        fixed_length = fixed.pop() if len(fixed) == 1 else None
        max_length = spec.input.max_length or fixed_length or _tokenizer_limit(tokenizer) or DEFAULT_MAX_LENGTH
        if fixed_length is not None and max_length > fixed_length:
            raise InputError.one(f"{where}.input.max_length", f"teacher '{spec.name}' takes exactly "
                                 f"{fixed_length} tokens and input.max_length is {max_length}",
                                 f"set input.max_length to at most {fixed_length}, or leave it empty")
        batch = {i.shape[0] for i in inputs if i.shape and isinstance(i.shape[0], int) and i.shape[0] > 0}
        self.fixed_batch = batch.pop() if len(batch) == 1 else None
        self.adapter = TextAdapter(inputs, roles, tokenizer, max_length, fixed_length, spec.name)
        if tokenizer is not None and spec.input.tokenizer is None:
            self.adapter.notes.append(f"teacher '{spec.name}' reads the texts through {tokenizer.source}")
        note = self.metadata.pop("distill-studio:note", None)  # engine/teacher_base.py with_c_locale
        if note:
            self.adapter.notes.append(note)

    def _roles(self, inputs: list, spec: TeacherSpec, where: str) -> dict[str, str]:
        names = [i.name for i in inputs]
        unknown = [n for n in spec.input.roles if n not in names]
        if unknown:
            raise InputError.one(f"{where}.input.roles", f"teacher '{spec.name}' has no input "
                                 f"'{unknown[0]}' (its inputs: {', '.join(names)})",
                                 "name the model's inputs as the file has them")
        roles, unread = {}, []
        for i in inputs:
            role = spec.input.roles.get(i.name) or guess_role(i.name, i.type)
            if role is None or (role != "text" and i.type not in INPUT_DTYPES) or \
                    (role == "text" and i.type != "tensor(string)"):
                unread.append(f"{i.name} ({i.type}, shape {[d if isinstance(d, int) else '?' for d in i.shape]})")
            else:
                roles[i.name] = role
        if unread:
            raise InputError.one(f"{where}.input.roles", f"teacher '{spec.name}': what its input "
                                 f"{', '.join(unread)} takes cannot be read from the name and type",
                                 "set input.roles, e.g. {\"" + unread[0].split(" ")[0] + "\": \"ids\"}; "
                                 "roles: ids, mask, type_ids, positions (numbers), text (strings)",
                                 "shape_mismatch")
        return roles

    def _tokenizer(self, spec: TeacherSpec, where: str) -> TextTokenizer:
        path = spec.input.tokenizer
        beside = Path(spec.path).parent / "tokenizer.json"
        if path is None and not beside.is_file():
            raise InputError.one(f"{where}.input.tokenizer", f"teacher '{spec.name}' takes token ids "
                                 f"and has no tokenizer: no input.tokenizer, and no tokenizer.json "
                                 f"beside {Path(spec.path).name}", "set input.tokenizer to the "
                                 "tokenizer.json the model was trained with, or put it beside the "
                                 "model file", "missing_file")
        return read_tokenizer(Path(path or beside), f"{where}.input.tokenizer", f"teacher '{spec.name}'")

    def feeds(self, inputs) -> dict[str, np.ndarray]:
        return inputs

    def raw(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Outputs on texts, batched by length (sorted, then put back in order)."""
        if self.adapter.tokenizer is None or len(x) < 2:
            return super().raw(x, batch_size)
        order = np.argsort([len(str(t)) for t in x], kind="stable")
        out = super().raw(np.asarray(x, dtype=object)[order], batch_size)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return out[back]


def _tokenizer_limit(tokenizer: TextTokenizer | None) -> int | None:
    if tokenizer is None:
        return None
    cut = tokenizer.tokenizer.truncation
    return int(cut["max_length"]) if cut and cut.get("max_length") else None
