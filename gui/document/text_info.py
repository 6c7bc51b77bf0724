"""What a text data node knows about its file, kept in the node's `info` (not undoable, not
saved) by gui/text_previews.py from the engine's `preview-text` (engine/text_preview.py):

- {"text_file": KEY, "reading": True} while the engine reads it
- {"text_file": KEY, "preview": RESULT} once it has
- {"text_file": KEY, "error": MESSAGE} when the engine refused the file (the node shows it)

KEY is [path, text_column, label_column]: what the preview depends on. Read here for the node
card, the node's status and the inspector. Qt-free.
"""

from __future__ import annotations

from gui.document.model import Node


def is_text_node(node: Node) -> bool:
    return node.kind == "data" and node.props.get("format") == "text"


def text_key(node: Node) -> list | None:
    """What the preview of the node's file depends on; None without a file."""
    p = node.props
    if not is_text_node(node) or not p.get("path"):
        return None
    return [str(p["path"]), p.get("text_column") or "text", p.get("label_column") or None]


def preview_of(node: Node) -> dict | None:
    """The preview of the node's current file and columns, if read."""
    info = node.info
    if info.get("text_file") != text_key(node) or not isinstance(info.get("preview"), dict):
        return None
    return info["preview"]


def preview_words(info: dict) -> str:
    """One line: 'reading the texts…', '6 classes · 1,500 texts', '1,500 texts, unlabelled'."""
    if info.get("reading"):
        return "reading the texts…"
    if info.get("error"):
        return "cannot read the texts"
    result = info.get("preview")
    if not isinstance(result, dict):
        return ""
    n = result.get("texts", 0)
    texts = f"{n:,}{'' if result.get('complete', True) else '+'} text{'s' if n != 1 else ''}"
    if result.get("labelled"):
        k = result.get("classes_total", 0)
        return f"{k} class{'es' if k != 1 else ''} · {texts}"
    return f"{texts}, unlabelled"


def unknown_labels(node: Node, classes: list[str]) -> list[str] | None:
    """The file's labels that are not among `classes` (the student's); None when not known."""
    result = preview_of(node)
    if result is None or not result.get("labelled") or node.props.get("use_labels") is False:
        return None
    groups = result.get("groups") or []
    if len(groups) < result.get("classes_total", 0) or not result.get("complete", True):
        return None
    labels = [str(g.get("class")) for g in groups]
    if all(v in classes for v in labels):
        return []
    try:  # whole numbers index the classes, as the engine reads them (engine/data/labels.py)
        numbers = [float(v) for v in labels]
        if all(n == int(n) and 0 <= n < len(classes) for n in numbers):
            return []
    except ValueError:
        pass
    return [v for v in labels if v not in classes]


def teacher_text(node: Node) -> dict | None:
    """What the engine read of a text teacher's inputs and tokenizer (engine/text_roles.py), for
    the file the node has now; None for a model that reads no text."""
    info = node.info
    if node.kind != "teacher" or info.get("file") != node.props.get("path"):
        return None
    text = info.get("text")
    return text if isinstance(text, dict) else None


def card_words(text: dict | None) -> tuple[str, str]:
    """(what the teacher reads, its tokenizer) in a card's few words: ('raw text', ''),
    ('token ids', 'tokenizer: WordPiece, 2,000 tokens'), ('token ids', 'no tokenizer found'),
    or ('', '') for a model that reads no text."""
    if not text:
        return "", ""
    if text.get("reads") == "raw text":
        return "raw text", ""
    tok = text.get("tokenizer")
    if tok:
        return "token ids", f"tokenizer: {tok.get('kind', '?')}, {tok.get('vocab_size', 0):,} tokens"
    return "token ids", "tokenizer unreadable" if text.get("tokenizer_error") else "no tokenizer found"


def tokenizer_warning(node: Node) -> str:
    """'' or what is wrong with a text teacher's tokenizer, with the fix ('takes token ids and no
    tokenizer was found: set input.tokenizer …'; the teacher is the subject)."""
    text = teacher_text(node)
    if not text or not text.get("needs_tokenizer"):
        return ""
    fix = ("set input.tokenizer to the tokenizer.json it was trained with, or put that "
           "tokenizer.json beside the model file")
    if text.get("tokenizer_error"):
        return f"has a tokenizer that cannot be read ({text['tokenizer_error']}): {fix}"
    return f"takes token ids and no tokenizer was found: {fix}"
