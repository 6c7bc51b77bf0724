"""Texts (spec: `TextData`): the student reads token ids [max_length], right-padded, through its
tokenizer; each teacher reads the raw texts (`Source.texts`) through its own.

The student's tokenizer is the spec's `tokenizer.json`, or one trained on the training texts
(the labelled file and `unlabeled`, never the test file), kept in the cache beside the store so a
second run does not train it again, and saved with the run (engine/run.py) and the export. A
test file is read with the training file's tokenizer (`text` below), as a table's test file is
read with its columns.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from engine.atomic_io import atomic_write
from engine.data.labels import labels_to_indices, missing_classes_note
from engine.data.source import ArraySource, check_declared_size, register
from engine.data.text_files import read_texts
from engine.errors import InputError
from engine.spec import TextData
from engine.tokenizer import TextTokenizer, read_tokenizer, train_tokenizer


class TextSource(ArraySource):
    """Token ids float32 [N, max_length] (exact below 2^24), the texts, the tokenizer."""

    def __init__(self, ids: np.ndarray, texts: np.ndarray, y: np.ndarray | None, notes: tuple[str, ...],
                 tokenizer: TextTokenizer, max_length: int):
        super().__init__(ids, y, notes)
        self.text_array = texts
        self.text = tokenizer  # the student's tokenizer: the test file is read with it
        self.max_length = max_length

    def texts(self, idx: np.ndarray) -> np.ndarray:
        return self.text_array[idx]

    def digest(self, h) -> None:
        super().digest(h)
        for t in self.text_array:  # what the teachers read: the texts themselves, not the ids
            h.update(t.encode("utf-8", "surrogatepass"))
            h.update(b"\0")


@register("text")
def open_text(src: TextData, classes: list[str], cache_dir: Path | None = None,
              text: TextTokenizer | None = None) -> TextSource:
    texts: list[str] = []
    labels: list[int] = []
    notes: list[str] = []
    labelled_any = False
    for where, path in (("data.path", src.path), ("data.unlabeled", src.unlabeled)):
        if path is None:
            continue
        label_column = src.label_column if where == "data.path" else None
        got, raw_labels, blank = read_texts(Path(path), src.text_column, label_column, where)
        texts += got
        if raw_labels is not None:
            labels += labels_to_indices(np.asarray(raw_labels, dtype=object), classes,
                                        "data.label_column").tolist()
            labelled_any = True
            counts = np.bincount(labels[-len(got):], minlength=len(classes))
            what = f"{len(got):,} texts in {int((counts > 0).sum())} classes"
        else:
            labels += [-1] * len(got)
            what = f"{len(got):,} unlabelled texts"
        notes.append(f"{Path(path).name}: {what}" + (f" ({blank:,} blank lines or cells left out)" if blank else ""))
    if labelled_any and (note := missing_classes_note(labels, classes, "texts")):
        notes.append(note)
    tokenizer = text or student_tokenizer(src, texts, cache_dir)
    if text is None:
        notes.append(f"student tokenizer: {tokenizer.source}, {tokenizer.vocab_size:,} tokens")
    if tokenizer.pad_id is None:
        raise InputError.one("data.tokenizer", f"the tokenizer {Path(tokenizer.source).name} has no "
                             "padding token ([PAD] or <pad>), which the student needs to batch texts "
                             "of different lengths", "add a padding token to it, or leave data.tokenizer "
                             "empty to train one on the texts")
    check_declared_size("data.path", Path(src.path).name, "its texts, as token ids,",
                        (len(texts), src.max_length), len(texts) * src.max_length * 4)
    ids = tokenizer.padded(texts, src.max_length, tokenizer.pad_id, dtype=np.float32)
    lengths = (ids != tokenizer.pad_id).sum(axis=1)
    cut = sum(1 for seq in tokenizer.encode(texts[:2000], src.max_length * 4) if len(seq) > src.max_length)
    notes.append(f"tokens per text: median {int(np.median(lengths))}, 95th percentile "
                 f"{int(np.percentile(lengths, 95))}; batches are padded to their longest text"
                 + (f"; about {100 * cut / min(len(texts), 2000):.0f} % of texts are longer than "
                    f"max_length {src.max_length} and cut" if cut else ""))
    y = np.asarray(labels, dtype=np.int64) if labelled_any else None
    if y is not None and not (y >= 0).any():
        y = None
    return TextSource(ids, np.asarray(texts, dtype=object), y, tuple(notes), tokenizer, src.max_length)


def student_tokenizer(src: TextData, texts: list[str], cache_dir: Path | None) -> TextTokenizer:
    """The spec's tokenizer.json, or one trained on `texts` (from the cache when an earlier run
    trained the same one)."""
    if src.tokenizer is not None:
        return read_tokenizer(Path(src.tokenizer), "data.tokenizer", "the student's tokenizer")
    h = hashlib.sha256(repr((src.tokenizer_kind, src.vocab_size)).encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    cached = Path(cache_dir) / "tokenizers" / f"{h.hexdigest()[:32]}.json" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            tok = read_tokenizer(cached, "data.tokenizer", "the cached tokenizer")
            tok.source = f"trained on {len(texts):,} texts ({src.tokenizer_kind}; from the cache)"
            return tok
        except InputError:
            pass  # damaged: trained again and replaced
    tok = train_tokenizer(texts, src.tokenizer_kind, src.vocab_size)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cached, lambda tmp: tmp.write_text(tok.json, encoding="utf-8"))
        except OSError:
            pass  # a cache that cannot be written only costs time
    return tok
