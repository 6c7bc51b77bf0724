"""The inspector's layout and wording on top of the spec: labels, fields shown only when what
they refine is on, file filters, and the special editors (feature hints, a linked teacher's name).

Everything else (choices, defaults, bounds, help) comes from engine/spec.py; a setting not named
here gets a label made from its name. Keys: (node kind, dotted path in the node's properties).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.spec import pretraining_method
from gui.document.model import Node, get_in
from gui.document.node_checks import weights_only


@dataclass(frozen=True)
class Override:
    label: str = ""
    hidden: bool = False
    shown_if: Callable[[dict], bool] | None = None  # given the node's properties
    widget: str = ""  # hints: the feature-hints editor; teacher: a linked teacher's name
    file_filter: str = ""
    none_label: str = ""  # how a choice shows no value
    reset_when_hidden: bool = False  # when hidden, the value goes back to the spec's default
    placeholder: str = ""  # what an empty text field shows (default: "(none)" where optional)


def _is(path: tuple[str, ...], *values) -> Callable[[dict], bool]:
    return lambda props: get_in(props, path) in values


def _pretraining(*methods: str) -> Callable[[dict], bool]:
    """Shown when the student's pretraining method (auto resolved by its architecture) is one of these."""
    def shown(props: dict) -> bool:
        method = get_in(props, ("init", "pretraining", "method")) or "auto"
        return pretraining_method(method, get_in(props, ("architecture", "kind"))) in methods
    return shown


WEIGHTS = "Weights (*.safetensors)"

OVERRIDES: dict[tuple[str, str], Override] = {
    ("data", "name"): Override("Dataset"),
    ("data", "split.val"): Override("Validation fraction"),
    ("data", "split.test"): Override("Test fraction"),
    ("data", "split.seed"): Override("Split seed"),
    ("teacher", "path"): Override("Model file", file_filter="Models (*.onnx *.safetensors *.pt *.pth)"),
    ("teacher", "format"): Override(none_label="(from extension)"),
    ("teacher", "trusted"): Override("Trusted (runs its code)", shown_if=_is(("format",), "torchscript"),
                                     reset_when_hidden=True),
    ("teacher", "mapping"): Override(hidden=True),  # the class-mapping table below the form
    ("teacher", "architecture"): Override(shown_if=lambda p: weights_only(Node("", "teacher", p))),
    ("teacher", "input"): Override("Input the model expects"),
    ("teacher", "input.size"): Override("Resize to", placeholder="height, width (none: as is)"),
    ("teacher", "input.crop"): Override("Centre crop", placeholder="height, width (none: no crop)"),
    ("teacher", "input.mean"): Override(placeholder="one per channel, e.g. 0.485, 0.456, 0.406"),
    ("teacher", "input.std"): Override(placeholder="one per channel, e.g. 0.229, 0.224, 0.225"),
    ("teacher", "input.columns"): Override(placeholder="names, in order (none: all)"),
    ("teacher", "input.tokenizer"): Override("Tokenizer (text)", file_filter="Tokenizers (*.json)",
                                             placeholder="none: the tokenizer.json beside the model"),
    ("strategy", "hard_label_weight"): Override("Label weight α"),
    ("strategy", "partial_classes"): Override("Partial teachers"),
    ("strategy", "combine"): Override("Combine teachers"),
    ("strategy", "calibration"): Override("Calibrate with a few labels"),
    ("strategy", "calibration.weight"): Override("Calibration weight"),
    ("strategy", "hints"): Override("Feature hints", widget="hints"),
    ("strategy", "hint_weight"): Override(shown_if=lambda p: bool(p.get("hints"))),
    ("strategy", "task_heads"): Override("Task head per teacher"),
    ("strategy", "task_head_weight"): Override(shown_if=lambda p: bool(p.get("task_heads"))),
    ("strategy", "confidence_weight"): Override("Confidence loss"),
    ("strategy", "confidence_warmup"): Override("Confidence warm-up",
                                                shown_if=lambda p: (p.get("confidence_weight") or 0) > 0),
    ("strategy", "previous_student"): Override(file_filter=WEIGHTS),
    ("prune", "scope"): Override(shown_if=_is(("method",), "magnitude", None)),
    ("prune", "finetune_epochs"): Override("Fine-tune epochs"),
    ("prune", "finetune_lr"): Override("Fine-tune learning rate"),
    ("quantize", "calibration_samples"): Override(shown_if=_is(("mode",), "static")),
    ("quantize", "max_accuracy_drop"): Override("Max accuracy drop (points)"),
    ("export", "safetensors"): Override("Also safetensors weights"),
    ("student", "init"): Override("Initial weights"),
    ("student", "init.kind"): Override("Start from"),
    ("student", "init.teacher"): Override("Grow from teacher", widget="teacher", none_label="(choose a teacher)",
                                          shown_if=_is(("init", "kind"), "grow")),
    ("student", "init.path"): Override("Weights file", file_filter=WEIGHTS, shown_if=_is(("init", "kind"), "weights")),
    ("student", "init.pretraining"): Override("Self-supervised pretraining", reset_when_hidden=True,
                                              shown_if=_is(("init", "kind"), "self_supervised")),
    ("student", "init.pretraining.method"): Override("Method", none_label="auto"),
    ("student", "init.pretraining.lr"): Override("Learning rate"),
    ("student", "init.pretraining.temperature"): Override("Temperature τ", shown_if=_pretraining("simclr")),
    ("student", "init.pretraining.projection_dim"): Override("Projection width", shown_if=_pretraining("simclr")),
    ("student", "init.pretraining.crop_scale"): Override("Crop scale (images)", placeholder="min, max",
                                                         shown_if=_pretraining("simclr")),
    ("student", "init.pretraining.flip"): Override("Flip (images)", shown_if=_pretraining("simclr")),
    ("student", "init.pretraining.color_jitter"): Override("Colour jitter (images)", shown_if=_pretraining("simclr")),
    ("student", "init.pretraining.feature_mask"): Override("Feature mask (tables)", shown_if=_pretraining("simclr")),
    ("student", "init.pretraining.feature_noise"): Override("Feature noise (tables)", shown_if=_pretraining("simclr")),
    ("student", "init.pretraining.mask_ratio"): Override("Hidden share", none_label="auto (text 0.15, ViT 0.6)",
                                                         placeholder="auto: text 0.15, ViT 0.6",
                                                         shown_if=_pretraining("masked"), reset_when_hidden=True),
    ("student", "training.lr"): Override("Learning rate"),
    ("student", "training.momentum"): Override(shown_if=_is(("training", "optimizer"), "sgd")),
    ("student", "training.cpu_threads"): Override("CPU threads"),
    ("student", "training.compile"): Override("Compile (torch.compile)",
                                              none_label="auto (on for large students on a GPU)"),
    ("student", "training.accumulate"): Override("Grad. accumulation"),
    ("student", "training.activation_checkpointing"): Override("Checkpoint activations"),
}


def override(kind: str, dotted: str) -> Override:
    return OVERRIDES.get((kind, dotted), Override())
