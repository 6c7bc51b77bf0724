"""The strategy catalogue measured on Fashion-MNIST: one JSON object on the last line.

    .venv/bin/python bench/scenarios.py NAME [--seeds K]      NAME: s1-overlap,
        s1-disjoint-calibrated, s2-weak-to-strong, s3-federated, classic, or all

Every model is trained by the engine (`distill-engine run`) from the spec files in
bench/scenarios/NAME/, the same files the app opens on its canvas; this script only cuts the
data into the files those specs name (bench/scenarios/NAME/data/), puts each trained teacher
where the student's spec expects it (teachers/), and reads the figures off the runs. With
--seeds K every model is trained K times (training seeds 0…K−1; the data stays the same) and the
median of each figure is reported. Needs Debian's dataset-fashion-mnist.

Scenarios and goals (from the issue):
- s1-overlap: three teachers of different architectures, each trained only on its own labelled
  shard of overlapping class subsets; the student learns from an unlabelled transfer set with the
  UHC loss. Keys student_acc, oracle_acc (same student on the transfer set's labels), naive_acc
  (unknown classes as probability 0). Goal student_acc ≥ 0.93 × oracle_acc.
- s1-disjoint-calibrated: disjoint subsets; 10 labels per class calibrate the teachers. Same
  keys; naive_acc is the same student without calibration. Goal ≥ 0.90 × oracle_acc.
- s2-weak-to-strong: a small MLP trained on 2,000 labels teaches an MLP 512×2 on the unlabelled transfer
  set with the auxiliary confidence loss; the strong student is first pretrained
  self-supervised on the same unlabelled images (student.init kind self_supervised, SimCLR).
  Keys weak_acc, strong_acc, ceiling_acc (the same on ground truth), pgr = (strong − weak) /
  (ceiling − weak), probe_acc (the pretrained trunk's linear probe), and strong_scratch_acc,
  pgr_scratch: the same strong student trained from scratch (strong-scratch.distill.json).
  Goal pgr ≥ 0.4.
- s3-federated: 5 clients trained on Dirichlet(α = 0.5) shards from one shared initialisation;
  FedDF: the student starts from their FedAvg and distils their averaged logits on unlabelled
  public data. Keys student_acc, ensemble_acc, fedavg_acc, client_mean_acc. Goal student ≥
  ensemble − 0.02 and ≥ fedavg + 0.06.
- classic: one large teacher (MLP 1024×2, trained on 30,000 labelled images) → a small MLP 64×1.
  The small model's owner has 3,000 labels (small_acc: trained on them alone); the student
  instead learns from the teacher's outputs on 30,000 unlabelled images, Hinton's transfer set.
  Keys teacher_acc, small_acc, student_acc, gap_closed = (student − small) / (teacher − small),
  all on Fashion-MNIST's official 10,000 test images. Goal gap_closed ≥ 0.8. Beside it, without a
  teacher: the small model given its 3,000 labels among the 30,000 images, the others unlabelled
  (one npz, '' for no label), trained from scratch (small_partial_acc) or first pretrained
  self-supervised on all 30,000 (small_ssl_acc, SimCLR): where self-supervised learning helps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAIN = str(ROOT / "engine" / "__main__.py")  # by absolute path with -P: nothing from the working directory
HERE = Path(__file__).resolve().parent / "scenarios"
FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
SCENARIOS = ("s1-overlap", "s1-disjoint-calibrated", "s2-weak-to-strong", "s3-federated", "classic")


# ── data: the files the specs name ───────────────────────────────────────────────────────


def fashion() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST's 60,000 training images [N, 1, 28, 28], labels, and a fixed shuffle."""
    from engine.data.idx_files import read_idx as _read_idx

    if not FASHION.is_dir():
        raise SystemExit("Fashion-MNIST is missing: apt-get install -y dataset-fashion-mnist")
    x = _read_idx(FASHION / "train-images-idx3-ubyte.gz", "images").astype(np.float32)[:, None]
    y = _read_idx(FASHION / "train-labels-idx1-ubyte.gz", "labels").astype(np.int64)
    return x, y, np.random.default_rng(0).permutation(len(x))


def save(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=np.array(NAMES)[y])


def prepare(name: str) -> None:
    """Cut the data: a pool (first half of the shuffle) for teachers, the second half for the
    student's transfer set (unlabelled to distillation; its validation and test parts measure)."""
    data = HERE / name / "data"
    if (data / "done").exists() and (name != "classic" or (data / "few-labels-and-transfer.npz").exists()):
        return
    x, y, perm = fashion()
    pool, transfer = perm[:30000], perm[30000:]
    if name.startswith("s1"):
        specs = sorted((HERE / name).glob("teacher-*.distill.json"))
        for spec in specs:  # each teacher's shard: pool samples of its classes only
            classes = [NAMES.index(c) for c in json.loads(spec.read_text())["classes"]]
            idx = pool[np.isin(y[pool], classes)][:8000]
            save(data / f"shard-{spec.stem.split('.')[0][len('teacher-'):]}.npz", x[idx], y[idx])
        save(data / "transfer.npz", x[transfer], y[transfer])
    elif name == "s2-weak-to-strong":
        save(data / "weak.npz", x[pool[:2000]], y[pool[:2000]])
        save(data / "transfer.npz", x[transfer], y[transfer])
    elif name == "s3-federated":  # per class, Dirichlet(0.5) shares over the 5 clients
        rng = np.random.default_rng(0)
        parts: list[list[int]] = [[] for _ in range(5)]
        for c in range(10):
            members = pool[y[pool] == c]
            cuts = (np.cumsum(rng.dirichlet([0.5] * 5))[:-1] * len(members)).astype(int)
            for k, chunk in enumerate(np.split(members, cuts)):
                parts[k] += chunk.tolist()
        for k, idx in enumerate(parts):
            idx = np.array(sorted(idx))
            save(data / f"client-{k}.npz", x[idx], y[idx])
        save(data / "public.npz", x[transfer], y[transfer])
    else:  # the teacher's labelled data; your few labels; the unlabelled transfer set
        save(data / "labelled.npz", x[pool], y[pool])
        save(data / "few-labels.npz", x[transfer[:3000]], y[transfer[:3000]])
        save(data / "transfer.npz", x[transfer], y[transfer])
        names = np.array(NAMES)[y[transfer]]  # the same images; '' marks those without a label
        names[3000:] = ""
        np.savez(data / "few-labels-and-transfer.npz", x=x[transfer], y=names)
    (data / "done").write_text("")


# ── runs ─────────────────────────────────────────────────────────────────────────────────


def official_test_accuracy(run_dir: Path, spec_path: Path) -> float:
    """A trained student's accuracy on Fashion-MNIST's own 10,000 test images, read back from its
    student.safetensors by the engine's teacher loader: one test set for models trained on
    different data files."""
    from engine.data.idx_files import read_idx as _read_idx
    from engine.spec import TeacherSpec, load_spec
    from engine.teachers import ZooTeacher

    spec = load_spec(spec_path)
    x = _read_idx(FASHION / "t10k-images-idx3-ubyte.gz", "images").astype(np.float32)[:, None]
    y = _read_idx(FASHION / "t10k-labels-idx1-ubyte.gz", "labels").astype(np.int64)
    model = ZooTeacher(TeacherSpec(name="trained", path=run_dir / "student.safetensors", classes=spec.classes,
                                   architecture=spec.student.architecture), spec.classes, "student", x.shape[1:])
    return float((model.predict(x).argmax(1) == y).mean())


def engine_run(spec_path: Path, label: str, seed: int, folder: Path, db: Path):
    """`distill-engine run` of the spec at spec_path (its paths resolved against its folder)
    with training seed `seed`, in folder/run: (the spec, the engine's stdout). SystemExit naming
    `label` when it fails."""
    from engine.spec import load_spec

    spec = load_spec(spec_path)
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "spec.distill.json").write_text(spec.to_json())
    proc = subprocess.run([sys.executable, "-P", ENGINE_MAIN, "run", folder / "spec.distill.json", "--run-dir",
                           folder / "run", "--db", db], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}\n"
                         f"{proc.stdout[-2000:]}")
    return spec, proc.stdout


def run(name: str, stage: str, seed: int, work: Path) -> dict:
    """Train bench/scenarios/NAME/STAGE.distill.json with `seed`; the finished event's figures.
    A trained teacher is copied to teachers/STAGE.safetensors, where the student spec looks."""
    folder = work / f"seed-{seed}" / stage
    spec, out = engine_run(HERE / name / f"{stage}.distill.json", f"{name}/{stage}", seed, folder,
                           work / "runs.sqlite")
    finished = json.loads(out.splitlines()[-1])
    for line in out.splitlines():  # the pretrained trunk's linear probe, where the student has one
        event = json.loads(line)
        if event["event"] == "metric" and "pretrain/probe_acc" in event["values"]:
            finished["final"]["pretrain/probe_acc"] = event["values"]["pretrain/probe_acc"]
    if not spec.teachers:  # a teacher (or a label-only reference): keep its weights for the students
        (HERE / name / "teachers").mkdir(exist_ok=True)
        shutil.copy(folder / "run" / "student.safetensors", HERE / name / "teachers" / f"{stage}.safetensors")
    return finished["final"]


def ensemble_and_fedavg(spec_path: Path) -> tuple[float, float]:
    """FedDF's two references on the student's test split, computed with the engine's own code:
    the accuracy of the clients' averaged logits, and of their one-shot FedAvg."""
    import torch

    from engine.data import load_dataset
    from engine.models import build_model
    from engine.spec import load_spec
    from engine.student_init import init_student
    from engine.teachers import load_teachers

    spec = load_spec(spec_path)
    data = load_dataset(spec)
    teachers = load_teachers(spec, data.train.x[:8], 2)
    logits = np.zeros((len(data.test), len(spec.classes)), np.float32)
    for t in teachers:
        logits[:, t.student_index] += t.predict(data.test.x) / len(teachers)
    ensemble = float((logits.argmax(1) == data.test.y).mean())
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes))
    init_student(model, spec, teachers)
    with torch.inference_mode():
        pred = model.eval()(torch.from_numpy(data.test.x)).argmax(1).numpy()
    return ensemble, float((pred == data.test.y).mean())


def measure(name: str, seed: int, work: Path) -> dict[str, float]:
    acc = "test/acc"
    if name.startswith("s1"):
        for stage in ("teacher-a", "teacher-b", "teacher-c"):
            run(name, stage, seed, work)
        return {"student_acc": run(name, "student", seed, work)[acc],
                "oracle_acc": run(name, "oracle", seed, work)[acc],
                "naive_acc": run(name, "naive", seed, work)[acc]}
    if name == "s2-weak-to-strong":
        run(name, "weak", seed, work)
        strong = run(name, "strong", seed, work)
        scratch = run(name, "strong-scratch", seed, work)[acc]
        weak, ceiling = strong["test/teacher_acc/weak"], run(name, "ceiling", seed, work)[acc]
        return {"weak_acc": weak, "strong_acc": strong[acc], "ceiling_acc": ceiling,
                "pgr": (strong[acc] - weak) / (ceiling - weak), "probe_acc": strong.get("pretrain/probe_acc", 0.0),
                "strong_scratch_acc": scratch, "pgr_scratch": (scratch - weak) / (ceiling - weak)}
    if name == "s3-federated":
        for k in range(5):
            run(name, f"client-{k}", seed, work)
        student = run(name, "student", seed, work)
        ensemble, fedavg = ensemble_and_fedavg(HERE / name / "student.distill.json")
        clients = [v for k, v in student.items() if k.startswith("test/teacher_acc/")]
        return {"student_acc": student[acc], "ensemble_acc": ensemble, "fedavg_acc": fedavg,
                "client_mean_acc": sum(clients) / len(clients)}
    stages = ("teacher", "small", "student", "small-partial", "small-ssl")
    for stage in stages:
        run(name, stage, seed, work)
    teacher, small, student, partial, ssl = (official_test_accuracy(work / f"seed-{seed}" / stage / "run",
                                                                    HERE / name / f"{stage}.distill.json")
                                             for stage in stages)
    return {"teacher_acc": teacher, "small_acc": small, "student_acc": student,
            "gap_closed": (student - small) / (teacher - small),
            "small_partial_acc": partial, "small_ssl_acc": ssl}


def goal(name: str, r: dict[str, float]) -> bool:
    if name == "s1-overlap":
        return r["student_acc"] >= 0.93 * r["oracle_acc"]
    if name == "s1-disjoint-calibrated":
        return r["student_acc"] >= 0.90 * r["oracle_acc"]
    if name == "s2-weak-to-strong":
        return r["pgr"] >= 0.4
    if name == "s3-federated":
        return r["student_acc"] >= r["ensemble_acc"] - 0.02 and r["student_acc"] >= r["fedavg_acc"] + 0.06
    return r["gap_closed"] >= 0.8


def scenario(name: str, seeds: int) -> dict:
    start = time.perf_counter()
    prepare(name)
    work = HERE / name / "runs"
    shutil.rmtree(work, ignore_errors=True)
    per_seed, minutes = [], []
    for seed in range(seeds):
        started = time.perf_counter()
        per_seed.append(measure(name, seed, work))
        minutes.append(round((time.perf_counter() - started) / 60, 2))
    median = {k: round(statistics.median(r[k] for r in per_seed), 4) for k in per_seed[0]}
    return {"scenario": name, **median, "goal_met": goal(name, median), "seeds": seeds,
            "seconds": round(time.perf_counter() - start, 1), "minutes_per_seed": minutes,
            "per_seed": [{k: round(v, 4) for k, v in r.items()} for r in per_seed]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=SCENARIOS + ("all",))
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    results = [scenario(n, args.seeds) for n in (SCENARIOS if args.name == "all" else (args.name,))]
    for r in results[:-1]:
        print(json.dumps(r))
    print(json.dumps(results[-1] if len(results) == 1 else {"scenarios": results}))


if __name__ == "__main__":
    main()
