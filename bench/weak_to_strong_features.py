"""Why the s2-weak-to-strong student does not get past its weak teacher: which representations
let a linear classifier fitted on the weak teacher's labels recover the gap. One JSON object on
the last line.

    .venv/bin/python bench/weak_to_strong_features.py [--seed S] [--threads T]

Runs in bench/scenarios/s2-weak-to-strong/runs/features-seed-S/; the weak teacher it trains
replaces teachers/weak.safetensors (as bench/scenarios.py's own run of the scenario does).

The data and models are bench/scenarios.py's s2-weak-to-strong, trained by the engine from the
scenario's own spec files with training seed S: the weak teacher (MLP 16×1 on weak.npz's 2,000
labels), the ceiling (MLP 512×2 on transfer.npz's true labels), and the strong student's
self-supervised pretraining (SimCLR, 5 epochs; strong.distill.json with one epoch of
distillation, its trunk read back from the checkpoint the pretraining phase saves at its end,
before distillation touches it). The split is the engine's own split of transfer.npz
(`load_dataset` of strong.distill.json: 21,000 train / 3,000 val / 6,000 test); the true
training labels are the ones `use_labels: false` hides (Dataset.hidden_labels).

For each representation of the samples — raw pixels; the ceiling's penultimate (512-d)
features; those projected on their top-16 principal components; the ceiling's 10 logits; the
self-supervised trunk's 512-d features; those on their top-16 principal components — the
engine's linear probe (engine/pretrain/probe.py) is fitted on the training split twice: on the
weak teacher's labels (argmax) and on the true labels, and measured on the test split's true
labels. pgr = (probe_weak − weak_acc) / (ceiling_acc − weak_acc), ceiling_acc the engine-trained
ceiling's test accuracy. Burns et al. 2023 ("Weak-to-strong generalization") fit linear probes
on frozen features; Charikar et al. 2024 ("Quantifying the gain in weak-to-strong
generalization") show the strong student's fit is the projection of the weak labels onto its
function class, so the gap is recovered only where the teacher's errors cannot be expressed
in the representation: a low-dimensional, class-aligned one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scenarios import HERE, engine_run, prepare  # noqa: E402

NAME = "s2-weak-to-strong"
PCS = 16  # principal components kept by the projected representations


def train(stage: str, seed: int, threads: int, work: Path, epochs: int | None = None) -> tuple[Path, dict]:
    """The engine's run of the scenario's STAGE spec with training seed `seed` and `threads`
    CPU threads (and `epochs` epochs of distillation where given): its run folder and the
    finished event's figures."""
    from engine.spec import load_spec

    spec = load_spec(HERE / NAME / f"{stage}.distill.json")
    update = {"cpu_threads": threads, **({"epochs": epochs} if epochs else {})}
    spec = spec.model_copy(update={"training": spec.training.model_copy(update=update)})
    path = work / f"{stage}.distill.json"  # its paths are absolute now: it may live anywhere
    path.write_text(spec.to_json())
    _, out = engine_run(path, f"{NAME}/{stage}", seed, work / stage, work / "runs.sqlite")
    return work / stage / "run", json.loads(out.splitlines()[-1])["final"]


def pretrained_state(run_dir: Path) -> dict:
    """The student's weights as the self-supervised phase left them: its last checkpoint."""
    import torch

    from engine.checkpoint import MANIFEST, STATE, checkpoint_dirs

    for folder in reversed(checkpoint_dirs(run_dir / "checkpoints")):
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("pretraining"):
            return torch.load(folder / STATE, map_location="cpu", weights_only=True)["model"]
    raise SystemExit(f"no pretraining checkpoint in {run_dir / 'checkpoints'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the engine runs' training seed")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads, engine runs and probes alike")
    args = parser.parse_args()
    start = time.perf_counter()

    import torch

    from engine.data import load_dataset
    from engine.models import build_model
    from engine.pretrain.phase import features
    from engine.pretrain.probe import linear_probe
    from engine.spec import TeacherSpec, load_spec
    from engine.teachers import ZooTeacher

    torch.set_num_threads(args.threads)
    prepare(NAME)
    work = HERE / NAME / "runs" / f"features-seed-{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    # the weak teacher, trained with this seed, where strong.distill.json looks for it
    weak_run, _ = train("weak", args.seed, args.threads, work)
    (HERE / NAME / "teachers").mkdir(exist_ok=True)
    (HERE / NAME / "teachers" / "weak.safetensors").write_bytes((weak_run / "student.safetensors").read_bytes())
    ceiling_run, ceiling_final = train("ceiling", args.seed, args.threads, work)
    ceiling_acc = ceiling_final["test/acc"]
    strong_run, _ = train("strong", args.seed, args.threads, work, epochs=1)  # pretraining + 1 epoch

    spec = load_spec(HERE / NAME / "strong.distill.json")
    data = load_dataset(spec)
    n_classes = len(spec.classes)
    train_y, test_y = data.hidden_labels, data.test.y
    shape = data.sample_shape

    def zoo(path: Path, arch) -> ZooTeacher:
        return ZooTeacher(TeacherSpec(name=path.stem, path=path, classes=spec.classes, architecture=arch),
                          spec.classes, "bench", shape)

    weak = zoo(weak_run / "student.safetensors", spec.teachers[0].architecture)
    weak_train = weak.predict(data.train.x).argmax(1)
    weak_acc = float((weak.predict(data.test.x).argmax(1) == test_y).mean())
    ceiling_arch = load_spec(HERE / NAME / "ceiling.distill.json").student.architecture
    ceiling = zoo(ceiling_run / "student.safetensors", ceiling_arch)
    ceiling_model = ceiling.model.cpu().eval()
    pretrained = build_model(spec.student.architecture, shape, n_classes)
    pretrained.load_state_dict(pretrained_state(strong_run))
    pretrained.eval()

    def rows(fn, x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([fn(torch.from_numpy(x[i:i + 2048])) for i in range(0, len(x), 2048)])

    def top_components(tr: torch.Tensor, te: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = tr.mean(0)
        _, _, v = torch.pca_lowrank(tr - mean, q=PCS, center=False, niter=6)
        return (tr - mean) @ v, (te - mean) @ v

    reps: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    reps["raw_pixels"] = (rows(lambda b: b.flatten(1), data.train.x), rows(lambda b: b.flatten(1), data.test.x))
    reps["ceiling_features"] = (rows(lambda b: features(ceiling_model, b), data.train.x),
                                rows(lambda b: features(ceiling_model, b), data.test.x))
    reps[f"ceiling_features_pca{PCS}"] = top_components(*reps["ceiling_features"])
    reps["ceiling_logits"] = (rows(ceiling_model, data.train.x), rows(ceiling_model, data.test.x))
    reps["ssl_features"] = (rows(lambda b: features(pretrained, b), data.train.x),
                            rows(lambda b: features(pretrained, b), data.test.x))
    reps[f"ssl_features_pca{PCS}"] = top_components(*reps["ssl_features"])

    y_true, y_weak, y_test = (torch.from_numpy(np.asarray(a, np.int64)) for a in (train_y, weak_train, test_y))
    out = {}
    for name, (tr, te) in reps.items():
        true = linear_probe(tr, y_true, te, y_test, n_classes)
        weak_fit = linear_probe(tr, y_weak, te, y_test, n_classes)
        out[name] = {"dims": int(tr.shape[1]), "probe_true": round(true, 4), "probe_weak": round(weak_fit, 4),
                     "pgr": round((weak_fit - weak_acc) / (ceiling_acc - weak_acc), 3)}
        print(json.dumps({name: out[name]}), flush=True)
    print(json.dumps({"bench": "weak_to_strong_features", "seed": args.seed, "weak_acc": round(weak_acc, 4),
                      "ceiling_acc": round(ceiling_acc, 4), "weak_train_label_acc":
                      round(float((weak_train == train_y).mean()), 4), "representations": out,
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
