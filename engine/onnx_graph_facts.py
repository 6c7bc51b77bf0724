"""What an ONNX graph itself says, read from its nodes without running it: the class labels a
scikit-learn classifier (skl2onnx) carries, how many numbers its weights hold, which output
holds the per-class scores and whether they are probabilities or logits.

Used by `distill-engine inspect` (engine/inspect_model.py); onnx is imported by the caller.
"""

from __future__ import annotations

import math

ML_DOMAIN = "ai.onnx.ml"
_LABEL_ATTRS = ("classlabels_strings", "classlabels_ints", "classlabels_int64s")
# nodes that hand their input on unchanged in meaning (shape or number type only)
_PASS_THROUGH = {"Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Normalizer", "ZipMap"}
_FLOAT_TYPES = {1, 10, 11, 16}  # float, float16, double, bfloat16


def graph_classes(model) -> list[str] | None:
    """Class labels held in the graph (skl2onnx classifiers and ZipMap), as strings, so that a
    scikit-learn model needs no hand-typed class list."""
    import onnx

    for node in model.graph.node:
        if node.domain != ML_DOMAIN:
            continue
        for attr in node.attribute:
            if attr.name not in _LABEL_ATTRS:
                continue
            values = onnx.helper.get_attribute_value(attr)
            labels = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
            if labels:
                return labels
    return None


def parameter_count(model) -> int:
    """Numbers the model's weights hold: initializers, tensors held in node attributes and the
    float lists of ai.onnx.ml nodes (coefficients, intercepts, tree thresholds and leaf values,
    support vectors), so a scikit-learn model does not read as 0 parameters. Integer lists
    describe structure (node ids, class labels) and are not counted."""
    import onnx

    A = onnx.AttributeProto
    total = sum(math.prod(t.dims) for t in model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == A.TENSOR:
                total += math.prod(attr.t.dims)
            elif attr.type == A.TENSORS:
                total += sum(math.prod(t.dims) for t in attr.tensors)
            elif attr.type == A.FLOATS and node.domain == ML_DOMAIN:
                total += len(attr.floats)
    return total


def scores_output(model):
    """The output the engine reads as per-class scores (as engine/teachers.py picks it): the
    first float tensor output of rank 2, or None."""
    for out in model.graph.output:
        t = out.type.tensor_type
        if out.type.HasField("tensor_type") and t.elem_type in _FLOAT_TYPES and len(t.shape.dim) == 2:
            return out
    return None


def zipmap_outputs(model) -> list[str]:
    """Outputs made by ZipMap (a list of dicts per sample), which no teacher can be read from."""
    made = {o for n in model.graph.node if n.op_type == "ZipMap" for o in n.output}
    return [o.name for o in model.graph.output if o.name in made]


def output_kind(model, name: str) -> tuple[str, str] | None:
    """('probabilities' | 'logits', why) for one output, where the graph makes it evident: the
    node that computes it (through reshapes and casts), else its name; None where neither does.
    skl2onnx names every score output 'probabilities', decision values too: its names say nothing."""
    producers = {o: n for n in model.graph.node for o in n.output if o}
    current, seen = name, set()
    while current in producers and current not in seen:
        seen.add(current)
        node = producers[current]
        if node.domain == ML_DOMAIN and _is_classifier(node):
            return _classifier_kind(node, current)
        found = _kind_of_node(node, producers)
        if found:
            return found
        if node.op_type not in _PASS_THROUGH or not node.input:
            break
        current = node.input[0]
    return None if model.producer_name == "skl2onnx" else _kind_of_name(name)


def _is_classifier(node) -> bool:
    """An ai.onnx.ml classifier: a node that carries class labels (ZipMap only passes them on)."""
    return node.op_type != "ZipMap" and any(a.name in _LABEL_ATTRS for a in node.attribute)


def _classifier_kind(node, output: str) -> tuple[str, str] | None:
    """A scikit-learn classifier's score output holds probabilities where its transform makes
    them: a softmax or logistic post-transform, an SVM fitted with probability=True, a forest's
    leaf fractions; a linear SVM's or an SVM's decision values are left to `auto`."""
    import onnx

    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    post = attrs.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else str(post)
    if list(node.output).index(output) != 1:
        return None
    why = f"is the {node.op_type}'s probability output (a scikit-learn classifier"
    if node.op_type == "SVMClassifier":
        return ("probabilities", why + " fitted with probability=True)") if attrs.get("prob_a") else None
    if post != "NONE":
        return "probabilities", why + f", post-transform {post.lower()})"
    if node.op_type == "TreeEnsembleClassifier":
        return "probabilities", why + ": a forest's leaf class fractions)"
    return None


def _kind_of_node(node, producers: dict) -> tuple[str, str] | None:
    """What a (standard) node's output holds, when its kind says so."""
    op = node.op_type
    if op == "Softmax":
        return "probabilities", "comes from a Softmax node"
    if op == "LogSoftmax":
        return "logits", "comes from a LogSoftmax node (log-probabilities, read as logits)"
    if op in ("Gemm", "MatMul") or (op == "Add" and any(
            getattr(producers.get(i), "op_type", "") == "MatMul" for i in node.input)):
        return "logits", f"comes straight from a linear layer ({op}) with no softmax after it"
    return None


def _kind_of_name(name: str) -> tuple[str, str] | None:
    """What an output's name says it holds."""
    words = name.lower().replace("-", "_").replace(".", "_").split("_")
    if any(w in ("prob", "probs", "probability", "probabilities", "softmax") for w in words):
        return "probabilities", f"is named '{name}'"
    if "logits" in words or "logit" in words:
        return "logits", f"is named '{name}'"
    return None
