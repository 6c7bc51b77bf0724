"""The export's latency figures: warm-up first, medians of timed batches, one thread count for
PyTorch and onnxruntime, spread and load recorded, indicative on a busy machine; the speed-ups
and the words for them come from the medians. Real timings of real callables, no training."""

import time

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine import export


def test_a_cold_first_call_is_a_warm_up_not_a_timing():
    calls = []

    def fn():
        calls.append(None)
        time.sleep(0.08 if len(calls) == 1 else 0.001)  # the first call is cold, the rest are not

    times = export._timed_ms(fn, warmup=3, budget_s=0.03, timed=(10, 50))
    assert len(calls) == 3 + len(times) and 10 <= len(times) <= 50
    assert max(times) < 40  # the 80 ms call is not among them
    assert 1 <= float(np.median(times)) < 40


def test_the_number_of_timed_batches_follows_the_budget():
    assert 6 <= len(export._timed_ms(lambda: time.sleep(0.02), warmup=1, budget_s=0.2, timed=(3, 50))) <= 10
    assert len(export._timed_ms(lambda: None, warmup=1, budget_s=10.0, timed=(3, 50))) == 50


def test_torch_is_timed_at_the_stated_threads_and_restored():
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        timing = export.measure_latency({"pytorch_fp32": lambda: seen.append(torch.get_num_threads())}, 2)
        assert set(seen) == {2} and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert timing["threads"] == 2 and timing["warmup_batches"] == export.LATENCY_WARMUP
    stats = timing["ms_per_batch"]["pytorch_fp32"]
    assert len(seen) == export.LATENCY_WARMUP + stats["timed_batches"]
    assert stats["min"] <= stats["p10"] <= stats["median"] <= stats["p90"] <= stats["max"]
    assert timing["load"]["cpu_count"] and "indicative" in timing


def test_a_real_model_and_its_onnx_session_are_measured_alike(tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10)).eval()
    x = np.random.default_rng(0).normal(size=(20, 1, 8, 8)).astype(np.float32)
    export.to_onnx(model, x[:1], tmp_path / "m.onnx", {})
    threads = export.timing_threads()
    session = export._session(ort, tmp_path / "m.onnx", threads)
    timing = export.measure_latency({"pytorch_fp32": export._torch_runner(model, x),
                                     "onnx_fp32": export._onnx_runner(session, x)}, threads)
    stats = timing["ms_per_batch"]
    assert set(stats) == {"pytorch_fp32", "onnx_fp32"} and timing["batch"] == export.LATENCY_BATCH == 64
    assert all(s["timed_batches"] >= export.LATENCY_TIMED[0] and s["median"] <= s["max"] for s in stats.values())
    assert timing["speedup_vs_pytorch"] == {
        "onnx_fp32": round(stats["pytorch_fp32"]["median"] / stats["onnx_fp32"]["median"], 2)}


def stat(median, p10=None, p90=None, low=None, high=None, n=30):
    p10, p90 = p10 or median * 0.95, p90 or median * 1.05
    return {"median": median, "p10": p10, "p90": p90, "min": low or p10 * 0.9, "max": high or p90 * 1.1,
            "timed_batches": n}


def test_speedups_are_ratios_of_medians_not_of_extremes():
    # PyTorch's slowest batch was a cold 200 ms; its median is 2 ms: ONNX is 2× faster, not 2000×
    timing = export.judge_latency({"pytorch_fp32": stat(2.0, high=200.0), "onnx_fp32": stat(1.0, low=0.1)},
                                  2, 0.5, 2)
    assert timing["speedup_vs_pytorch"] == {"onnx_fp32": 2.0} and not timing["indicative"]
    assert timing["indicative_because"] is None
    assert export.speedup_text(2.0) == "2.0× faster" and export.speedup_text(0.5) == "2.0× slower"
    assert export.speedup_text(1.01) == "same speed" and export.speedup_text(None) == "–"


@pytest.mark.parametrize("load, spread, why", [
    (3.4, False, "the machine was busy (load 3.4 on 2 cores)"),
    (0.3, True, "the timings spread widely (p10–p90: pytorch_fp32 2–9 ms)"),
    (None, True, "the timings spread widely"),  # no load average (Windows): the spread alone
])
def test_a_busy_machine_or_a_wide_spread_makes_the_figures_indicative(load, spread, why):
    torch_stat = stat(3.0, 2.0, 9.0) if spread else stat(3.0)
    timing = export.judge_latency({"pytorch_fp32": torch_stat, "onnx_fp32": stat(1.0)}, 2, load, 2)
    assert timing["indicative"] and why in timing["indicative_because"]
    assert timing["load"] == {"loadavg_1min": load, "cpu_count": 2}
    assert timing["speedup_vs_pytorch"] == {"onnx_fp32": 3.0}


def test_the_card_states_how_the_timings_were_taken_and_what_was_not_measured():
    timing = export.judge_latency({"pytorch_fp32": stat(4.0), "onnx_fp32": stat(2.0), "onnx_int8": stat(1.0)},
                                  2, 3.1, 2)
    report = {
        "name": "n", "teachers": ["a"], "strategy": {"kind": "hinton_kd", "temperature": 4.0}, "classes": ["0", "1"],
        "input": {"shape": ["batch", 4]}, "output": {"shape": ["batch", 2]}, "parameters": 10, "sparsity": 0.0,
        "compression": [], "parity_max_abs_diff": 1e-6, "evaluated_on": "test", "test_samples": 9,
        "files": {"onnx_fp32": {"bytes": 4000}, "onnx_int8": {"bytes": 1000}},
        "accuracy": {"pytorch_fp32": None, "onnx_fp32": None, "onnx_int8": None},
        "accuracy_note": "not measured: the data has no labels and no test file (set data.test_file to a "
                         "labelled file)",
        "latency_ms_per_batch": {k: v["median"] for k, v in timing["ms_per_batch"].items()},
        "latency_batch": 64, "threads": 2, "latency": timing, "problems": [],
        "notes": [{"kind": "not_measured", "message": "test accuracy was not measured: the data has no "
                   "labels and no test file", "hint": "set data.test_file to a labelled file"}]}
    card = export.model_card(report)
    assert "| ONNX int8 (student.int8.onnx) | 1,000 | not measured | 1.000 (0.950–1.050) | 4.0× faster |" in card
    assert "median of 30 timed batches after 5 warm-up batches" in card and "at 2 threads" in card
    assert "indicative timings**: the machine was busy (load 3.1 on 2 cores)" in card
    assert "set data.test_file to a labelled file" in card
