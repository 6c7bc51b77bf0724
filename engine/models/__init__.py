"""The student zoo: one module per architecture family, registered by name.

`build_model(arch, sample_shape, n_classes)` builds the `Student` registered for
`arch.kind`; the contract every student fulfils is in engine/models/contract.py.
"""

from engine.models import cnn, mlp, resnet, transformer, vit  # noqa: F401  (each registers itself)
from engine.models.contract import Student, require
from engine.models.normalize import Normalize
from engine.models.registry import ARCHITECTURES, build_model, count_parameters, fit_weights, hidden_widths

__all__ = ["ARCHITECTURES", "Normalize", "Student", "build_model", "count_parameters", "fit_weights", "hidden_widths",
           "require"]
