"""One writer per run folder, and nothing written before a run can start (issue 19).

Two ``--force`` runs into one ``--out`` both exited 0 and mixed their files; refusals of bad data
left ``run.json`` behind, and a rerun was then refused. Now ``alexnet_training.lock`` holds
``RUN_DIR/.lock`` for the whole run, and every check comes before it.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from alexnet_cli import train
from alexnet_cli.console import EXIT_ERROR, EXIT_OK
from alexnet_training import lock, runs
from tests.reference import ROOT, subprocess_env
from tests.test_training_data import cifar_batch, forged_png, image_folders

SHORT = ["--framework", "torch", "--variant", "cifar", "--limit", "64", "--batch-size", "16", "--epochs", "1",
         "--no-progress"]


def error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("alexnet-train: error: "), lines
    assert "This is a bug" not in lines[0]
    return lines[0]


def holder(run_dir, *argv, env=None) -> subprocess.Popen:
    """A process that holds ``run_dir``'s lock: ``alexnet-train argv`` or, without argv, the lock alone."""
    code = ("import sys, time; from alexnet_training.lock import hold\n"
            "with hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(300)")
    args = [sys.executable, "-m", "alexnet_cli.train", *argv] if argv else [sys.executable, "-c", code, str(run_dir)]
    return subprocess.Popen(args, cwd=ROOT, env=env or subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_lock(run_dir, proc, timeout=120.0) -> None:
    """Until the lock file names ``proc`` (it holds the folder)."""
    deadline = time.monotonic() + timeout
    while lock.holder(run_dir / lock.LOCK_FILE).split()[1:2] != [str(proc.pid)]:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never took its folder's lock"
        time.sleep(0.05)


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


# --- fast: the lock itself, and the CLI's refusal --------------------------------------------------


def test_a_folder_held_by_another_run_is_refused_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    with lock.hold(out):
        with pytest.raises(lock.FolderInUse, match=f"pid {os.getpid()}"):  # flock: per open file, even here
            with lock.hold(out):
                pass
        assert train.main([*SHORT, "--data", "digits", "--out", str(out), "--force"]) == EXIT_ERROR
        line = error_line(capsys)
        assert f"{out} is in use by another alexnet-train (pid {os.getpid()} on " in line and "--out" in line
        assert sorted(p.name for p in out.iterdir()) == [lock.LOCK_FILE]  # nothing of the refused run
    assert not out.exists()  # the holder made the folder, wrote nothing into it, and removed it


def test_a_lock_left_by_a_killed_run_blocks_nothing(tmp_path, capsys):
    """flock is released by the kernel when its process dies: the lock file a SIGKILLed holder
    leaves behind names a dead pid and stops neither --resume nor --force."""
    out = tmp_path / "run"
    proc = holder(out)
    assert proc.stdout.readline() == "held\n"
    with pytest.raises(lock.FolderInUse, match=f"in use by another alexnet-train \\(pid {proc.pid} on "):
        with lock.hold(out):
            pass
    kill(proc)
    assert lock.holder(out / lock.LOCK_FILE).startswith(f"pid {proc.pid} ")  # stale, and still there
    # both get past the lock to the folder's own checks (a full --force run: the slow test below)
    assert train.main([*SHORT, "--data", "digits", "--out", str(out), "--resume"]) == EXIT_ERROR
    assert "holds no run to resume" in error_line(capsys)
    proc = holder(out)
    assert proc.stdout.readline() == "held\n"
    kill(proc)
    assert train.main([*SHORT, "--data", "digits", "--out", str(out), "--force", "--resume"]) == EXIT_ERROR
    assert "give one of them" in error_line(capsys)
    with lock.hold(out):
        pass
    assert list(out.iterdir()) == []  # the folder was there before: it stays, empty


def test_without_fcntl_the_refusal_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(lock, "fcntl", None)  # Windows
    assert train.main([*SHORT, "--data", "digits", "--out", str(tmp_path / "run")]) == EXIT_ERROR
    assert "fcntl" in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_the_chief_of_a_local_launcher_writes_under_the_launchers_lock(tmp_path, capsys, monkeypatch):
    """``--distribute multi-worker --devices N`` holds the lock in the launcher for the whole job; its
    chief worker, whose parent the environment names, must not wait on it (the slow proof is
    test_distributed_keras's killed-worker run)."""
    out = tmp_path / "run"
    argv = [*SHORT, "--data", "digits", "--out", str(out), "--force", "--resume"]
    with lock.hold(out):  # the launcher's
        monkeypatch.setenv(train.LAUNCHER_ENV, str(os.getppid()))  # this process poses as its worker
        assert train.main(argv) == EXIT_ERROR
        assert "give one of them" in error_line(capsys)  # past the lock, to the folder's own checks
        monkeypatch.setenv(train.LAUNCHER_ENV, "1")  # a launcher that is not this process's parent
        assert train.main(argv) == EXIT_ERROR
        assert "in use by another alexnet-train" in error_line(capsys)


@pytest.mark.parametrize("case", ["small image", "bomb", "cifar labels", "too few images"])
def test_refused_data_leaves_no_run_folder(tmp_path, capsys, case):
    """The data is read and checked before the folder is touched: a rerun is never refused for the
    run.json a refused run left behind."""
    if case == "cifar labels":
        data, named = f"cifar10:{cifar_batch(tmp_path, labels=[0.5] * 20)}", "test_batch: expected 'labels'"
    else:
        root = image_folders(tmp_path / "images", per_class=8)
        named = forged_png(root / "val" / "a" / "x.png", 12000, 12000) if case == "bomb" else \
            root / "train" / "b" / "0.png"
        if case == "small image":
            from PIL import Image

            Image.new("RGB", (8, 8)).save(named)
        data, named = f"imagefolder:{root}", str(named)
    out = tmp_path / "run"
    argv = [*SHORT, "--data", data, "--out", str(out)]
    if case == "too few images":
        argv[argv.index("--batch-size") + 1] = "32"
        named = "fewer than one batch"
    assert train.main(argv) == EXIT_ERROR
    assert named in error_line(capsys)
    assert not out.exists()


# --- slow: two real runs into one folder -----------------------------------------------------------


@pytest.mark.slow
def test_two_runs_into_one_folder_one_writes_the_other_is_refused(tmp_path, capsys):
    """The issue's probe: two ``--force`` runs 0.5 s apart. The first writes the whole run; the
    second exits 2 naming it. Then a run SIGKILLed while it holds the folder: ``--resume`` goes on."""
    out = tmp_path / "run"
    first = holder(out, *SHORT, "--data", "digits", "--out", str(out), "--force", "--seed", "1")
    wait_for_lock(out, first)
    assert train.main([*SHORT, "--data", "digits", "--out", str(out), "--force", "--seed", "2"]) == EXIT_ERROR
    assert f"in use by another alexnet-train (pid {first.pid} on " in error_line(capsys)
    _, err = first.communicate(timeout=300)
    assert first.returncode == EXIT_OK, err[-2000:]
    assert runs.read_config(out).seed == 1 and len(runs.read_metrics(out)) == 1
    written = [runs.RUN_FILE, runs.METRICS_FILE, runs.CHECKPOINTS["torch"], runs.FINAL_WEIGHTS]
    sidecars = [name + ".sha256" for name in written if name != runs.RUN_FILE and name != runs.METRICS_FILE]
    assert sorted(p.name for p in out.iterdir()) == sorted([*written, *sidecars])  # no .lock

    longer = [*SHORT[:SHORT.index("--epochs")], "--epochs", "2", "--no-progress"]
    killed = holder(out, *longer, "--data", "digits", "--out", str(out), "--resume", "--seed", "1")
    wait_for_lock(out, killed)
    kill(killed)
    assert train.main([*longer, "--data", "digits", "--out", str(out), "--resume", "--seed", "1"]) == EXIT_OK
    assert len(runs.read_metrics(out)) == 2 and not (out / lock.LOCK_FILE).exists()
