"""The benchmark code, not the speed: FLOPs counted from shapes, and the pieces of a run on tiny
repetitions. No time is asserted (speed is never a test here)."""

import json

import numpy as np
import pytest
import torch

import alexnet_torch
from alexnet_spec import VARIANTS, get_spec
from benchmarks import machine, report, timing
from benchmarks.flops import module_flops, spec_flops
from benchmarks.modes import TORCH_MODES
from benchmarks.run import measure_modes


def test_flops_of_paper_and_torchvision_from_their_shapes():
    spec = get_spec("paper")
    assert spec_flops(spec) == module_flops(alexnet_torch.build("paper"), spec.input_shape_nchw)
    assert round(spec_flops(spec) / 1e9, 3) == 1.449  # pitfalls.md, counted independently
    import torchvision

    assert round(module_flops(torchvision.models.alexnet(), (3, 224, 224)) / 1e9, 3) == 1.428


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variants_two_counts_agree(variant):
    spec = get_spec(variant)
    assert spec_flops(spec) == module_flops(alexnet_torch.build(variant), spec.input_shape_nchw)


def test_spec_count_refuses_a_geometry_it_does_not_reach():
    import dataclasses

    wrong = dataclasses.replace(get_spec("paper"), input_size=224)
    with pytest.raises(ValueError, match="spec says"):
        spec_flops(wrong)


def test_machine_probes_return_positive_rates():
    assert machine.sgemm_gflops(reps=1, n=256) > 0
    assert machine.copy_gbps(reps=1, mib=8) > 0
    with machine.peak_memory() as mem:
        # 64 MiB, touched: above glibc's largest mmap threshold (32 MiB), so fresh pages are
        # mapped whatever earlier tests left in the heap
        block = torch.ones(64 * 2**20 // 4)
        block += 1
    assert mem["mib"] is None or mem["mib"] >= 32


def test_paired_timing_gives_one_ratio_per_call():
    calls = []
    t = timing.paired_seconds(lambda: calls.append("fn"), lambda: calls.append("ref"), timing.SMOKE)
    assert len(t["ratios"]) == t["reps"] >= 1 and all(r > 0 for r in t["ratios"])
    assert calls[-2:] == ["fn", "ref"] and calls.count("fn") == t["reps"] + timing.SMOKE.warmup


def test_a_tiny_run_makes_a_table_json_and_chart(tmp_path):
    module = alexnet_torch.build("paper").eval()
    spec = get_spec("paper")
    rows = measure_modes("paper", TORCH_MODES[:1], {"torch": module}, 1.449e9, 60_965_224,
                         spec.input_shape_nchw, (1, 2), timing.SMOKE)
    for r in rows:
        r["sgemm_share"] = r["gflops"] / 100.0
        r["copy_share"] = r["weight_gbps"] / 10.0
    results = {
        "machine": {"cpu": "test", "threads": 1, "sgemm_gflops": 100.0, "sgemm_runs": [100.0, 90.0],
                    "copy_gbps": 10.0},
        "batches": [1, 2], "rows": rows,
        "variants": {"paper": {"gflop_per_image": 1.449, "params": 60_965_224, "input_size": 227}},
    }
    text = report.table(results)
    assert "paper" in text and "eager NCHW *" in text and "1.449 GFLOP/image" in text
    report.write_json(results, tmp_path / "b.json", overwrite=False)
    assert json.loads((tmp_path / "b.json").read_text())["rows"][0]["batch"] == 1
    pytest.importorskip("matplotlib")
    report.write_chart(results, tmp_path / "b.png", before=results, overwrite=False)
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        report.write_chart(results, tmp_path / "b.png", overwrite=False)


def test_the_cli_refuses_to_overwrite_results(tmp_path, capsys):
    from benchmarks.run import main

    (tmp_path / "benchmarks.json").write_text("{}")
    assert main(["--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.slow  # times real training steps; test_a_tiny_run_makes_a_table_json_and_chart is make test's
def test_training_rows_time_one_step_in_each_framework_paired_with_sgemm():
    from benchmarks.training import (
        STEP_FLOPS,
        measure_training,
        torch_step,
        training_table,
    )

    rows = measure_training(("cifar",), ("torch", "keras"), batch=2, budget=timing.SMOKE, sgemm_n=256)
    assert [(r["variant"], r["framework"], r["mode"]) for r in rows] == [
        ("cifar", "torch", "SGD step"), ("cifar", "keras", "train_on_batch")]
    step_gflop = STEP_FLOPS * spec_flops(get_spec("cifar")) / 1e9
    for r in rows:
        assert r["batch"] == 2 and r["reps"] >= 1 and r["seconds"] > 0 and r["sgemm_share"] > 0
        assert r["step_gflop_per_image"] == pytest.approx(step_gflop)
        assert r["gflops"] == pytest.approx(r["images_per_s"] * step_gflop)
    text = training_table(rows)
    assert "train_on_batch" in text and "3x the forward" in text
    # the timed call trains: the same batch twice gives another loss (the weights moved)
    from parity.randomize import random_batch

    step = torch_step("cifar", random_batch((2, 3, 32, 32), seed=1), np.array([0, 1]))
    loss_before, _ = step()
    loss_after, _ = step()
    assert loss_after != loss_before


def test_the_cli_runs_only_the_training_section_and_refuses_to_overwrite(tmp_path, capsys):
    from benchmarks.run import main

    (tmp_path / "benchmarks.json").write_text("{}")
    assert main(["--out", str(tmp_path), "--only", "training"]) == 2
    assert "--force" in capsys.readouterr().err
    (tmp_path / "benchmarks.json").unlink()
    (tmp_path / "benchmarks.png").write_text("")  # the inference section's chart
    assert main(["--out", str(tmp_path), "--only", "inference"]) == 2


def test_default_and_opt_in_paths_are_separate_paired_rows():
    """The literal model's call and ``optimize()``'s are separate rows, each with a paired share of
    sgemm at the largest batch, and timing the opt-in path leaves the user's model plain."""
    from benchmarks.modes import BASELINE_MODES, KERAS_MODES

    modes = {(m.framework, m.name): m.default for m in TORCH_MODES + KERAS_MODES}
    assert modes[("torch", "eager NCHW")] and modes[("keras", "predict")]
    assert not modes[("torch", "optimize()")] and not modes[("keras", "optimize() predict")]
    assert [m.name for m in BASELINE_MODES] == ["eager NCHW", "channels_last"]  # torchvision.models.alexnet
    module = alexnet_torch.build("cifar").eval()
    spec = get_spec("cifar")
    optimized = [m for m in TORCH_MODES if m.name in ("eager NCHW", "optimize()")]
    rows = measure_modes("cifar", optimized, {"torch": module}, 0.093e9, 25_730_506, spec.input_shape_nchw,
                         (1, 2), timing.SMOKE)
    assert [(r["mode"], r["batch"]) for r in rows] == [("eager NCHW", 1), ("eager NCHW", 2), ("optimize()", 1), ("optimize()", 2)]
    assert all((r["batch"] == 2) == ("sgemm_share" in r) for r in rows)
    assert all(r["sgemm_share"] > 0 for r in rows if r["batch"] == 2)
    assert not module._forward_pre_hooks and all(type(m) is torch.nn.Linear for m in module.modules() if isinstance(m, torch.nn.Linear))


# benchmarks/gpu.py on the CPU: the script itself, with tiny settings (no GPU here; no time asserted)
GPU_SMOKE = ["--device", "cpu", "--variants", "torchvision", "--batches", "1", "--steps", "1", "--repeats", "1",
             "--warmup", "0", "--matmul-size", "64"]


def test_gpu_script_times_both_frameworks_both_precisions_and_the_baseline(tmp_path, capsys):
    from benchmarks import gpu

    assert gpu.main(["--out", str(tmp_path), *GPU_SMOKE]) == 0
    results = json.loads((tmp_path / "gpu.json").read_text())
    rows = results["rows"]
    assert [(r["variant"], r["framework"], r["step"], r["precision"]) for r in rows] == [
        ("torchvision.models.alexnet", "torch", "plain loop", "fp32"),
        ("torchvision.models.alexnet", "torch", "plain loop", "bf16"),
        ("torchvision", "torch", "train_step", "fp32"), ("torchvision", "torch", "train_step", "bf16"),
        ("torchvision", "keras", "train_on_batch", "fp32"), ("torchvision", "keras", "train_on_batch", "bf16")]
    step_tflop = 3 * spec_flops(get_spec("torchvision")) / 1e12
    for r in rows:
        assert r["status"] == "ok" and r["batch"] == 1 and r["reps"] == 1 and r["steps_per_s"] > 0
        assert r["images_per_s"] == pytest.approx(r["steps_per_s"])
        assert r["tflops"] == pytest.approx(r["images_per_s"] * step_tflop)
    assert set(results["machine"]["matmul_tflops"]) == {"fp32", "bf16"} and results["machine"]["keras"]
    markdown = (tmp_path / "gpu.md").read_text()
    assert markdown.startswith("| variant |") and markdown.count("| ok |") == 6
    printed = capsys.readouterr().out
    assert "train_on_batch" in printed and "plain loop" in printed
    # never overwritten without --force
    before = markdown
    assert gpu.main(["--out", str(tmp_path), *GPU_SMOKE]) == 2
    assert "--force" in capsys.readouterr().err and (tmp_path / "gpu.md").read_text() == before


def test_gpu_script_reports_a_framework_without_the_device_and_a_failing_step_as_rows(tmp_path, monkeypatch, capsys):
    """A GPU run must keep its other rows: Keras on a backend with no GPU, or a step that runs out
    of memory, is a row saying why, and the run goes on."""
    from benchmarks import gpu

    monkeypatch.setattr(gpu, "keras_target", lambda device: (None, "keras: jax sees no GPU"))

    def out_of_memory(*args):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")

    monkeypatch.setattr(gpu, "torch_step", out_of_memory)
    argv = ["--out", str(tmp_path), *GPU_SMOKE, "--precisions", "fp32"]
    assert gpu.main(argv) == 0
    results = json.loads((tmp_path / "gpu.json").read_text())
    rows = {r["framework"] + " " + r["step"]: r["status"] for r in results["rows"]}
    assert rows == {"torch plain loop": "ok",
                    "torch train_step": "error: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
                    "keras train_on_batch": "keras: jax sees no GPU"}
    assert "keras: jax sees no GPU" in capsys.readouterr().out


def test_gpu_script_asks_for_a_gpu_that_is_not_there_in_one_line(tmp_path, monkeypatch, capsys):
    from benchmarks import gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--device cpu" in err and "sees none" in err
    assert not list(tmp_path.iterdir())


def test_keras_without_the_gpu_says_which_backend(monkeypatch):
    import keras

    from benchmarks import gpu

    monkeypatch.setattr(gpu, "_backend_gpus", lambda backend: 0)
    assert gpu.keras_target(torch.device("cuda")) == (None, f"keras: {keras.backend.backend()} sees no GPU")
    assert gpu.keras_target(torch.device("cpu")) == ("cpu:0", None)



@pytest.mark.parametrize("framework", ["torch", pytest.param("keras", marks=pytest.mark.slow)])  # torch: make test's
def test_guard_rows_pair_each_loop_with_and_without_the_finite_loss_guard(framework):
    """A row with a positive ratio; the two calls of a pair differ by the guard alone: on a batch
    with a nan, the guarded one stops and the plain one trains on."""
    from alexnet_training import runs
    from benchmarks.training import GUARDS, guard_table, measure_guard

    rows = measure_guard(("cifar",), (framework,), batch=2, steps=2, budget=timing.SMOKE)
    assert [(r["framework"], r["loop"], r["steps"]) for r in rows] == [(framework, GUARDS[framework][0], 2)]
    assert rows[0]["ratio"] > 0 and rows[0]["guarded_seconds"] > 0 and rows[0]["weights_check_seconds"] > 0
    assert "guarded/plain" in guard_table(rows)
    nan = np.full((2, 3, 32, 32), np.nan, np.float32)
    guarded, plain, check = GUARDS[framework][1]("cifar", nan, np.array([0, 1]), 2)
    assert check() == []
    plain()  # trains on, to nan weights
    assert check()
    with pytest.raises(runs.Diverged, match="the loss is nan"):
        guarded()


def test_epoch_rows_alternate_the_frameworks_and_give_the_ratio_of_their_last_epochs(monkeypatch):
    """measure_epochs: torch then Keras in every round, the Keras/torch ratio of each round's last
    epochs and its median, and "other" as the epoch less its timed parts (fake loops: no time)."""
    from benchmarks import training

    calls = []

    def fake(framework, epochs, parts):
        def measure(recipe, config, train_pipe, val_pipe, run_dir):
            calls.append((framework, config.epochs))
            return {"epochs": epochs.pop(0), "parts": dict(zip(training.PARTS, parts))}
        return measure

    monkeypatch.setattr(training, "EPOCHS", {
        "torch": fake("torch", [[9.0, 4.0], [9.0, 5.0]], (0.5, 2.0, 1.0, 0.25)),
        "keras": fake("keras", [[20.0, 5.0], [20.0, 7.5]], (0.5, 3.0, 1.0, 0.25)),
    })
    result = training.measure_epochs(2, epochs=2, limit=20)
    assert calls == [("torch", 2), ("keras", 2)] * 2
    assert result["ratios"] == [1.25, 1.5] and result["ratio"] == 1.375
    torch_row, keras_row = result["rows"]
    assert (torch_row["framework"], torch_row["first_epoch"], torch_row["epoch"]) == ("torch", 9.0, 4.5)
    assert keras_row["epoch"] == 6.25 and keras_row["other"] == pytest.approx(6.25 - 4.75)
    text = training.epoch_table(result)
    assert "Keras/torch epoch 1.38 (goal <= 1.3; not met)" in text and "precise BN s" in text


@pytest.mark.slow  # trains the cifar network in both frameworks; the fake-loop test above is make test's
def test_epoch_rows_time_each_frameworks_shipped_training_loop(tmp_path):
    from benchmarks.training import PARTS, epoch_table, measure_epochs

    result = measure_epochs(1, epochs=2, batch=16, limit=32)
    assert [r["framework"] for r in result["rows"]] == ["torch", "keras"]
    for row in result["rows"]:
        assert row["batches"] == 2 and row["first_epoch"] > 0 and row["epoch"] > 0
        assert all(row[part] > 0 for part in PARTS)
    assert result["ratio"] > 0 and "Keras/torch epoch" in epoch_table(result)


def test_pipeline_rows_time_ours_and_torchvision_v2_on_the_same_jpegs(tmp_path):
    from PIL import Image

    from alexnet_training.recipes import get_recipe
    from benchmarks.pipeline import PIPELINES, measure_pipelines, pipeline_table, sample_folder, torchvision_transform

    rows = measure_pipelines(("paper", "torchvision"), images=4, reps=1)
    assert [(r["recipe"], r["pipeline"]) for r in rows] == [(n, p) for n in ("paper", "torchvision") for p in PIPELINES]
    assert all(r["images_per_s"] > 0 and r["ms_per_image"] > 0 and r["images"] == 4 for r in rows)
    assert "v2 decode_jpeg" in pipeline_table(rows) and "PCA lighting" in pipeline_table(rows)
    # the same work: real JPEGs of varied sizes in, the recipe's crop out of both transforms
    files = sorted(sample_folder(tmp_path, 4).rglob("*.jpg"))
    assert len(files) == 4 and len({Image.open(f).size for f in files}) == 4
    for name in ("paper", "torchvision"):
        augment = get_recipe(name).augment
        with Image.open(files[0]) as image:
            out = torchvision_transform(augment, from_pil=True)(image.convert("RGB"))
        assert tuple(out.shape) == (3, augment.crop, augment.crop) and str(out.dtype) == "torch.float32"


def test_the_cli_runs_the_pipeline_section_alone_and_refuses_to_overwrite(tmp_path, capsys):
    from benchmarks.run import main

    (tmp_path / "benchmarks.json").write_text("{}")
    assert main(["--out", str(tmp_path), "--only", "pipeline"]) == 2
    assert "--force" in capsys.readouterr().err
