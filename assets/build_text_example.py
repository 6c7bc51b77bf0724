"""Rebuild the text example (Help → Examples → package descriptions) and its three teachers.

    python assets/build_text_example.py [--dumpavail FILE]

The corpus is real text: Debian's package descriptions (`apt-cache dumpavail`, or a saved copy
of its output), each labelled by its package's Section. Writes

- assets/examples/package-descriptions/: labelled.jsonl (keys "text", "label"), unlabelled.txt
  (transfer texts, one per line, their labels hidden), test.jsonl (labelled);
- assets/teachers/text/NAME/: model.onnx (+ tokenizer.json when it takes token ids), each
  teacher trained only on its own classes, on texts of its own that none of those files hold:
  tfidf, scikit-learn TF-IDF + logistic regression taking the raw strings (skl2onnx);
  wordpiece-bag, a PyTorch bag of embeddings on its own WordPiece tokenizer (input_ids,
  attention_mask, token_type_ids); bpe-cnn, a PyTorch convolutional net on its own byte-level
  BPE tokenizer (inputs named tokens and padding_mask).

Measured (`distill-engine run assets/examples/package-descriptions.distill.json`, 2 CPU cores,
about a minute with the int8 export): the teachers score 0.897 (tfidf), 0.833 (wordpiece-bag)
and 0.873 (bpe-cnn) on the test texts of their own three classes; the student 0.69-0.70 on all
six (int8 the same), where TF-IDF + logistic regression given all 1,860 training texts' labels
scores 0.857 and given the 360 labelled ones 0.73. The student's figure varies by about a point
from run to run: its WordPiece tokenizer, trained by the engine, is not reproducible.

Deterministic (fixed seeds, one CPU thread) for the same apt lists and library versions. Each
model records its class names in the ONNX metadata (key "classes", a JSON list). The functions
here are shared with bench/text_experts.py, which cuts a larger piece of the same corpus.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "examples" / "package-descriptions"
TEACHER_DIR = HERE / "teachers" / "text"
CLASSES = ["games", "science", "sound", "graphics", "fonts", "net"]
# teacher -> the classes it was trained on: overlapping subsets that connect all six
SUBSETS = {"tfidf": ["games", "science", "sound"],
           "wordpiece-bag": ["sound", "graphics", "fonts"],
           "bpe-cnn": ["fonts", "net", "games"]}
PER_CLASS = {"test": 100, "labelled": 60, "unlabelled": 250}  # the rest of each class: the teachers'
TEACHER_CAP = 600  # texts per class a teacher trains on, at most
MAX_TOKENS = 48  # the torch teachers read at most this many tokens (descriptions are short)


# ── the corpus ───────────────────────────────────────────────────────────────────────────


def dumpavail(path: Path | None = None) -> str:
    """The text of `apt-cache dumpavail` (or of a saved copy)."""
    if path is not None:
        return path.read_text(encoding="utf-8")
    return subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout


def stanzas(text: str):
    """Each package stanza's fields; Description is a list of its lines (the first line, then
    its continuation lines, '' for a paragraph break ' .'). Continuation lines of any other
    field (Tag:, Depends:, …) are skipped."""
    for block in text.split("\n\n"):
        fields: dict = {}
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t"):
                if current == "Description":
                    line = line.strip()
                    fields["Description"].append("" if line == "." else line)
                continue
            if ":" not in line:
                current = None
                continue
            current, value = line.split(":", 1)
            fields[current] = [value.strip()] if current == "Description" else value.strip()
        if "Description" in fields and "Section" in fields:
            yield fields


def packages(text: str, min_words: int = 4) -> list[tuple[str, str]]:
    """(section, description) pairs: sections without their contrib/ or non-free/ prefix, each
    description one line, whitespace collapsed; identical descriptions kept once (dropped when
    they appear under different sections), descriptions shorter than min_words dropped."""
    rows = []
    for f in stanzas(text):
        words = " ".join(line for line in f["Description"] if line).split()
        rows.append((f["Section"].split("/")[-1], " ".join(words)))
    sections = defaultdict(set)
    for section, desc in rows:
        sections[desc].add(section)
    seen, out = set(), []
    for section, desc in rows:
        if len(sections[desc]) == 1 and desc not in seen and len(desc.split()) >= min_words:
            seen.add(desc)
            out.append((section, desc))
    return out


def cut(rows: list[tuple[str, str]], classes: list[str], per_class: dict[str, int], seed: int = 0
        ) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[str]]]:
    """Each part of `per_class` (name → texts per class), as shuffled (text, label) lists, and
    the remaining texts of each class (the teachers' own data)."""
    by_class = defaultdict(list)
    for section, desc in rows:
        if section in classes:
            by_class[section].append(desc)
    rng = random.Random(seed)
    parts: dict[str, list[tuple[str, str]]] = {name: [] for name in per_class}
    rest = {}
    for c in classes:
        texts = sorted(by_class[c])
        rng.shuffle(texts)
        need = sum(per_class.values())
        if len(texts) <= need:
            raise SystemExit(f"section {c} has {len(texts)} descriptions, fewer than the {need} + "
                             "teacher texts asked for")
        at = 0
        for name, n in per_class.items():
            parts[name] += [(t, c) for t in texts[at:at + n]]
            at += n
        rest[c] = texts[at:]
    for name in parts:
        rng.shuffle(parts[name])
    return parts, rest


def teacher_data(rest: dict[str, list[str]], classes: list[str], cap: int) -> tuple[list[str], list[int]]:
    """A teacher's training texts and label indices (into `classes`), at most `cap` per class."""
    texts, labels = [], []
    for k, c in enumerate(classes):
        texts += rest[c][:cap]
        labels += [k] * len(rest[c][:cap])
    return texts, labels


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def write_lines(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")


# ── the teachers ─────────────────────────────────────────────────────────────────────────


def _label_classes(path: Path, classes: list[str], producer: str) -> None:
    import onnx

    proto = onnx.load(str(path))
    proto.producer_name, proto.producer_version = producer, "1"
    opsets = sorted((o.domain, o.version) for o in proto.opset_import)  # skl2onnx's order varies
    del proto.opset_import[:]
    for domain, version in opsets:
        proto.opset_import.add(domain=domain, version=version)
    del proto.metadata_props[:]
    proto.metadata_props.add(key="classes", value=json.dumps(classes))
    onnx.save(proto, str(path))


def tfidf_teacher(texts: list[str], labels: list[int], classes: list[str], model: Path,
                  tokenizer: Path | None = None) -> None:
    """scikit-learn TF-IDF (words and word pairs) + logistic regression, exported with skl2onnx
    taking the raw strings [N, 1]; outputs label and probabilities (no zipmap)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("tfidf", TfidfVectorizer(lowercase=True, max_features=4000, sublinear_tf=True)),
                     ("lr", LogisticRegression(C=10.0, max_iter=1000))])
    pipe.fit(texts, labels)
    onx = to_onnx(pipe, initial_types=[("text", StringTensorType([None, 1]))], target_opset=17,
                  options={id(pipe.steps[-1][1]): {"zipmap": False}})
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(onx.SerializeToString())
    _label_classes(model, classes, "distill-studio text example (scikit-learn)")


def _torch_teacher(net, ids: np.ndarray, labels: list[int], epochs: int, seed: int):
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(ids)
    y = torch.tensor(labels)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()
    return net.eval()


def wordpiece_tokenizer(texts: list[str], vocab_size: int):
    """A WordPiece tokenizer (BERT's: lower-cased, split on spaces and punctuation), its
    vocabulary the special tokens, every character seen (alone and as a ##continuation), then
    the most frequent words (ties in alphabetical order), padding as id 0. Built here rather
    than with tokenizers' WordPieceTrainer, whose result varies from run to run (ties broken in
    hash-map order), so that rebuilding writes the same file."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    from engine.tokenizer import SPECIALS, TextTokenizer

    norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)))
    chars = sorted({ch for w in words for ch in w})
    vocab = SPECIALS["wordpiece"] + chars + ["##" + ch for ch in chars]
    room = max(0, vocab_size - len(vocab))
    vocab += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:room]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = norm, pre, decoders.WordPiece()
    return TextTokenizer(tok, tok.to_str(), 0, f"built from {len(texts):,} texts (wordpiece)")


def wordpiece_bag_teacher(texts: list[str], labels: list[int], classes: list[str], model: Path,
                          tokenizer: Path, vocab: int = 3000, seed: int = 1) -> None:
    """A bag of embeddings (mean over the tokens, one hidden layer) on its own WordPiece
    tokenizer; ONNX inputs input_ids, attention_mask, token_type_ids (int64 [batch, length])."""
    import torch

    tok = wordpiece_tokenizer(texts, vocab)
    torch.manual_seed(seed)

    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(tok.vocab_size, 48)
            self.segment = torch.nn.Embedding(2, 48)
            self.head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(48, 64), torch.nn.ReLU(),
                                            torch.nn.Linear(64, len(classes)))

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            if attention_mask is None:
                attention_mask = (input_ids != 0).long()
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            m = attention_mask.unsqueeze(-1).float()
            h = self.embed(input_ids) + self.segment(token_type_ids)
            return self.head((h * m).sum(1) / m.sum(1).clamp(min=1.0))

    ids = tok.padded(texts, MAX_TOKENS, 0)
    net = _torch_teacher(Bag(), ids, labels, 30, seed)
    model.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.write_text(tok.json, encoding="utf-8")
    x = torch.from_numpy(ids[:2])
    axes = {"batch": 0, "length": 1}
    torch.onnx.export(net, (x, torch.ones_like(x), torch.zeros_like(x)), str(model), dynamo=False,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                      opset_version=17, dynamic_axes={n: {v: k for k, v in axes.items()}
                                                      for n in ("input_ids", "attention_mask", "token_type_ids")}
                      | {"logits": {0: "batch"}})
    _label_classes(model, classes, "distill-studio text example (PyTorch, WordPiece)")


def bpe_cnn_teacher(texts: list[str], labels: list[int], classes: list[str], model: Path,
                    tokenizer: Path, vocab: int = 3000, seed: int = 2) -> None:
    """A convolutional net (embeddings, two convolutions of width 3, max over the unpadded
    positions) on its own byte-level BPE tokenizer; ONNX inputs named tokens and padding_mask
    (int64 [batch, length], the mask 1 for tokens, 0 for padding)."""
    import torch

    from engine.tokenizer import train_tokenizer

    tok = train_tokenizer(texts, "bpe", vocab)
    torch.manual_seed(seed)

    class Cnn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(tok.vocab_size, 48)
            self.conv1 = torch.nn.Conv1d(48, 64, 3, padding=1)
            self.conv2 = torch.nn.Conv1d(64, 64, 3, padding=1)
            self.head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(64, len(classes)))

        def forward(self, tokens, padding_mask=None):
            if padding_mask is None:
                padding_mask = (tokens != 0).long()
            m = padding_mask.unsqueeze(1).float()  # [N, 1, L]
            h = self.embed(tokens).transpose(1, 2) * m
            h = torch.relu(self.conv1(h)) * m
            h = torch.relu(self.conv2(h)) * m
            return self.head((h - (1.0 - m) * 1e4).amax(dim=2))

    ids = tok.padded(texts, MAX_TOKENS, 0)
    net = _torch_teacher(Cnn(), ids, labels, 20, seed)
    model.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.write_text(tok.json, encoding="utf-8")
    x = torch.from_numpy(ids[:2])
    torch.onnx.export(net, (x, torch.ones_like(x)), str(model), dynamo=False,
                      input_names=["tokens", "padding_mask"], output_names=["scores"], opset_version=17,
                      dynamic_axes={"tokens": {0: "batch", 1: "length"}, "padding_mask": {0: "batch", 1: "length"},
                                    "scores": {0: "batch"}})
    _label_classes(model, classes, "distill-studio text example (PyTorch, byte-level BPE)")


BUILDERS = {"tfidf": tfidf_teacher, "wordpiece-bag": wordpiece_bag_teacher, "bpe-cnn": bpe_cnn_teacher}


def onnx_accuracy(model: Path, tokenizer: Path | None, classes: list[str], rows: list[tuple[str, str]]) -> float:
    """A teacher's accuracy on the rows of its own classes, read through the engine (its
    tokenizer, its inputs by role), as the distillation sees it."""
    from engine.spec import TeacherInput, TeacherSpec
    from engine.text_teachers import TextOnnxTeacher

    rows = [(t, c) for t, c in rows if c in classes]
    spec = TeacherSpec(name=model.stem, path=model, classes=classes, input=TeacherInput(tokenizer=tokenizer))
    teacher = TextOnnxTeacher(spec, classes, model.stem, 1)
    scores = teacher.predict(np.array([t for t, _ in rows], dtype=object))
    return float((scores.argmax(1) == np.array([classes.index(c) for _, c in rows])).mean())


def build_teachers(rest: dict[str, list[str]], subsets: dict[str, list[str]], files, cap: int,
                   test: list[tuple[str, str]]) -> dict[str, float]:
    """Train and export each teacher of `subsets` to files(NAME) = (model path, tokenizer path
    or None); their test accuracies on their own classes."""
    accs = {}
    for name, classes in subsets.items():
        texts, labels = teacher_data(rest, classes, cap)
        model, tokenizer = files(name)
        BUILDERS[name](texts, labels, classes, model, tokenizer)
        accs[name] = onnx_accuracy(model, tokenizer, classes, test)
        size = sum(f.stat().st_size for f in (model, tokenizer) if f is not None)
        print(f"  {name}: {len(texts)} texts of {', '.join(classes)}; test acc on its classes "
              f"{accs[name]:.3f}; {size:,} bytes", flush=True)
    return accs


def example_files(name: str) -> tuple[Path, Path | None]:
    """assets/teachers/text/NAME/model.onnx (+ tokenizer.json beside it)."""
    folder = TEACHER_DIR / name
    return folder / "model.onnx", None if name == "tfidf" else folder / "tokenizer.json"


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dumpavail", type=Path, help="a saved `apt-cache dumpavail` output")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = packages(dumpavail(args.dumpavail))
    print(f"{len(rows):,} distinct descriptions; "
          + ", ".join(f"{c} {n}" for c, n in Counter(s for s, _ in rows).items() if c in CLASSES))
    parts, rest = cut(rows, CLASSES, PER_CLASS)
    write_jsonl(EXAMPLE / "labelled.jsonl", parts["labelled"])
    write_lines(EXAMPLE / "unlabelled.txt", [t for t, _ in parts["unlabelled"]])
    write_jsonl(EXAMPLE / "test.jsonl", parts["test"])
    print(f"wrote {EXAMPLE}: " + ", ".join(f"{k} {len(v)}" for k, v in parts.items()))
    build_teachers(rest, SUBSETS, example_files, TEACHER_CAP, parts["test"])


if __name__ == "__main__":
    main()
