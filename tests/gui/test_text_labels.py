"""Which labels of a text file the app calls unknown: the engine's own rule (class names, or
whole numbers indexing the classes), so a valid file never blocks Run."""

from gui.document.model import Node
from gui.document.text_info import text_key, unknown_labels


def node_with_labels(labels: list[str]) -> Node:
    node = Node("data-1", "data", {"format": "text", "path": "/x/t.jsonl", "label_column": "label"})
    node.info = {"text_file": text_key(node), "preview": {
        "labelled": True, "classes_total": len(labels), "complete": True, "texts": 10,
        "groups": [{"class": c, "count": 5, "texts": []} for c in labels]}}
    return node


def test_names_and_whole_number_indices_are_known_others_are_not():
    classes = ["negative", "positive"]
    assert unknown_labels(node_with_labels(["positive", "negative"]), classes) == []
    assert unknown_labels(node_with_labels(["0", "1"]), classes) == []  # indices, as the engine reads them
    assert unknown_labels(node_with_labels(["0", "2"]), classes) == ["0", "2"]  # 2 is past the classes
    assert unknown_labels(node_with_labels(["pos", "negative"]), classes) == ["pos"]
