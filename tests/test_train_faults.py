"""A training run never publishes a broken model (issue 19): a nan or inf loss stops the run with
one line, the checkpoint is verified before a resume loads it and refused when changed, torn or
not ours, a kill while it is replaced leaves one that verifies, and every finished epoch prints
one line that stays, the same in both frameworks."""

import contextlib
import io
import json
import math
import pickle
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch  # first: see parity._triton

from alexnet_cli import train as cli
from alexnet_cli.console import EXIT_ERROR
from alexnet_spec import checksum
from alexnet_training import runs

SMALL = ["--variant", "cifar", "--data", "digits", "--limit", "32", "--batch-size", "16", "--no-progress"]
NUMBER = r"(-?\d+\.\d{4})"
EPOCH_LINE = re.compile(rf"^epoch (\d+)/(\d+): train_loss {NUMBER} top1 {NUMBER} \| val_loss {NUMBER} "
                        rf"val_top1 {NUMBER} val_top5 {NUMBER} \| lr (\S+) \| (\d+\.\d) s$")


def train_main(framework, out, *extra):
    """``alexnet-train`` in this process: (exit code, stdout, stderr)."""
    if framework == "keras":  # Dropout's seed generators are named by a per-process count, and a
        import keras          # resumed checkpoint is matched by name: number them as a fresh process

        keras.utils.clear_session()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(["--framework", framework, *SMALL, "--out", str(out), *extra])
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """``finished_run(framework)``: (folder, stdout, stderr) of one 2-epoch run, trained once; tests
    that change a run copy the folder (:func:`copy_run`)."""
    done = {}

    def get(framework):
        if framework not in done:
            out = tmp_path_factory.mktemp(f"faults-{framework}") / "run"
            code, stdout, stderr = train_main(framework, out, "--epochs", "2")
            assert code == 0, stderr
            done[framework] = out, stdout, stderr
        return done[framework]

    return get


def copy_run(finished_run, framework, tmp_path):
    return Path(shutil.copytree(finished_run(framework)[0], tmp_path / "run"))


def snapshot(folder):
    return {p.name: checksum.sha256(p) for p in sorted(folder.iterdir())}


def error_line(stderr):
    """The one error line; any other line on stderr must be the run's progress: the device line
    first, then epoch lines."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("alexnet-train: error: ")]
    progress = [line for line in lines if line not in errors]
    if progress and progress[0].startswith("device: "):
        progress = progress[1:]
    assert len(errors) == 1 and all(EPOCH_LINE.match(line) for line in progress), stderr
    assert "This is a bug" not in errors[0] and "weights_only" not in errors[0]
    return errors[0]


# -- one line per finished epoch ---------------------------------------------------------------

@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_each_finished_epoch_prints_one_line_that_stays(finished_run, framework):
    """The same line in both frameworks, once per epoch, with --no-progress too (it turns off the
    bars only); its numbers are the metrics.csv row's."""
    out, stdout, stderr = finished_run(framework)
    found = [EPOCH_LINE.match(line) for line in stderr.splitlines() if line.startswith("epoch ")]
    assert all(found) and [(m[1], m[2]) for m in found] == [("1", "2"), ("2", "2")], stderr
    for match, row in zip(found, runs.read_metrics(out)):
        shown = [float(match[i]) for i in range(3, 8)]
        wanted = [row[k] for k in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5")]
        assert shown == pytest.approx(wanted, abs=6e-5) and float(match[8]) == pytest.approx(row["lr"])
    assert f"{framework} cifar on digits: 2 epochs," in stdout


def test_the_epoch_line_goes_to_stderr_and_json_keeps_stdout_one_object(tmp_path, capsys):
    """One epoch: its line on stderr, stdout the summary alone ("1 epoch", not "1 epochs"); with
    --json, stdout is one JSON object and no epoch line is printed."""
    assert cli.main(["--framework", "torch", *SMALL, "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if EPOCH_LINE.match(line)] == \
        [line for line in captured.err.splitlines() if line.startswith("epoch 1/1: ")] != []
    assert len(captured.out.splitlines()) == 1 and "torch cifar on digits: 1 epoch, val_top1" in captured.out
    assert cli.main(["--framework", "torch", *SMALL, "--epochs", "1", "--out", str(tmp_path / "b"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is True
    assert not [line for line in captured.err.splitlines() if line.startswith("epoch ")]


# -- the finite-loss guard ---------------------------------------------------------------------

@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_run_that_diverges_stops_and_keeps_its_last_checkpoint(finished_run, tmp_path, monkeypatch, framework):
    """Resumed for a third epoch at lr 1e30: the loss turns nan or inf, the run exits 2 with one line
    naming the epoch, and the folder is as it was (the epoch-2 checkpoint, its metrics, the model
    of epoch 2: no NaN model published)."""
    module = pytest.importorskip(f"alexnet_{framework}.training")
    monkeypatch.setattr(module, "learning_rate", lambda recipe, epoch, top1, lr: lr if epoch < 2 else 1e30)
    out = copy_run(finished_run, framework, tmp_path)
    before = snapshot(out)
    code, _, stderr = train_main(framework, out, "--epochs", "3", "--resume")
    assert code == EXIT_ERROR
    line = error_line(stderr)
    assert re.search(r"training diverged: (the (validation )?loss is (nan|inf|-inf)|\d+ weight tensors? holds? nan "
                     r"or inf \(.*\)) at epoch 3", line), line
    assert f"{out} keeps the checkpoint and metrics of epoch 2" in line and "--force" in line
    assert snapshot(out) == before


def test_a_fresh_run_at_a_huge_lr_stops_in_its_first_epoch_and_publishes_nothing(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = train_main("torch", out, "--epochs", "2", "--lr", "1e30")
    assert code == EXIT_ERROR
    line = error_line(stderr)
    assert re.search(r"the loss is (nan|inf|-inf) at epoch 1, step \d of 2", line), line
    assert "holds no checkpoint" in line and "Lower --lr (now 1e+30)" in line
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


@pytest.mark.parametrize("fault", ["validation loss", "weights"])
def test_a_nan_validation_loss_or_weight_is_never_checkpointed(tmp_path, monkeypatch, fault):
    """The loss of every step is finite, but the epoch's validation loss, or a weight, is not."""
    import alexnet_torch.training as T

    if fault == "validation loss":
        monkeypatch.setattr(T, "evaluate", lambda *a, **k: (math.nan, 0.1, 0.5))
    else:
        train_one_epoch = T.train_one_epoch

        def poisoned(model, *args, **kwargs):
            result = train_one_epoch(model, *args, **kwargs)
            with torch.no_grad():
                next(b for n, b in model.named_buffers() if n.endswith("running_var"))[0] = math.inf
            return result

        monkeypatch.setattr(T, "train_one_epoch", poisoned)
        monkeypatch.setattr(T, "evaluate", lambda *a, **k: (1.0, 0.1, 0.5))
    out = tmp_path / "run"
    code, _, stderr = train_main("torch", out, "--epochs", "1", "--precise-bn", "0")
    assert code == EXIT_ERROR
    expected = "the validation loss is nan" if fault == "validation loss" else "1 weight tensor holds nan or inf"
    assert f"training diverged: {expected}" in error_line(stderr) and "at epoch 1" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


class CountingLoader(list):
    """Batches that count how many were taken (a replica that stops early leaves its peers waiting)."""

    taken = 0

    def __iter__(self):
        for batch in super().__iter__():
            self.taken += 1
            yield batch


def _tiny_epoch(nan_at_step):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x = torch.randn(4, 1, 3, 4)
    batches = CountingLoader((x.clone(), torch.tensor([0, 1, 2, 0])) for _ in range(3))
    if nan_at_step:
        batches[nan_at_step - 1][0][0, 0, 0, 0] = math.nan
    return model, torch.optim.SGD(model.parameters(), lr=0.1), batches


def test_one_process_stops_at_the_first_nan_step():
    from alexnet_torch.training import train_one_epoch

    model, optimizer, batches = _tiny_epoch(nan_at_step=2)
    with pytest.raises(runs.Diverged, match=r"^training diverged: the loss is nan at step 2 of 3\.$"):
        train_one_epoch(model, optimizer, batches)
    assert batches.taken == 2


@pytest.mark.parametrize("where", ["this replica", "another replica"])
def test_every_replica_finishes_the_epoch_then_all_stop(where):
    """Under ``reduce`` no replica stops alone (its peers would wait in a collective): each takes every
    batch, and all raise on the summed loss, whichever replica's loss was nan."""
    from alexnet_torch.training import train_one_epoch

    model, optimizer, batches = _tiny_epoch(nan_at_step=1 if where == "this replica" else None)
    peer = 0.0 if where == "this replica" else math.nan
    reduce = lambda loss, correct, seen: (loss + peer, correct, seen)  # noqa: E731  (two replicas' sum)
    with pytest.raises(runs.Diverged, match="the loss summed over the replicas is nan"):
        train_one_epoch(model, optimizer, batches, reduce=reduce)
    assert batches.taken == 3
    model, optimizer, batches = _tiny_epoch(nan_at_step=None)
    assert math.isfinite(train_one_epoch(model, optimizer, batches, reduce=lambda *v: v)[0])


@pytest.mark.slow  # two torchrun replicas: test_every_replica_finishes_the_epoch_then_all_stop is make test's
def test_torchrun_replicas_all_stop_on_a_diverged_loss(tmp_path):
    from tests.test_distributed_torch import TORCHRUN, TRAIN, run

    out = tmp_path / "run"
    code, _, err, _ = run([*TORCHRUN, "--nproc_per_node", "2", *TRAIN, "--limit", "32", "--batch-size", "16",
                           "--epochs", "2", "--lr", "1e30", "--out", str(out)], timeout=240)
    assert code != 0 and "alexnet-train: error: training diverged: the loss summed over the replicas" in err
    assert "alexnet-train (rank 1): error: training diverged" in err  # no replica was left waiting
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


# -- checkpoint checksums ----------------------------------------------------------------------

def _hostile(marker):
    class Hostile:
        def __reduce__(self):
            return Path.touch, (marker,)

    return Hostile()


def _damage(path, case, tmp_path):
    data = path.read_bytes()
    if case == "changed":  # 64 bytes in the middle overwritten: today's resume trained on, to NaN
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(64) + data[middle + 64:])
    elif case == "no checksum":
        checksum.sidecar(path).unlink()
    elif case in ("truncated", "torn"):
        path.write_bytes(data[:len(data) // 3])
    elif case == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "hostile pickle":
        path.write_bytes(pickle.dumps({"model": _hostile(tmp_path / "pwned")}))
    elif case == "hostile torch.save":
        torch.save({"model": _hostile(tmp_path / "pwned")}, path)


CHANGED = "was changed or torn after alexnet-train wrote it"
UNREADABLE = "cannot be read as a checkpoint of this run"


@pytest.mark.parametrize("case, sidecar, expected", [
    ("changed", "kept", CHANGED),
    ("no checksum", "-", "has no checksum file checkpoint.pt.sha256 beside it"),
    ("truncated", "kept", CHANGED),
    # below, the sidecar is rewritten to match (an attacker's valid sidecar): the loader itself refuses
    ("truncated", "matching", UNREADABLE),
    ("garbage", "matching", UNREADABLE),
    ("hostile pickle", "matching", UNREADABLE),
    ("hostile torch.save", "matching", UNREADABLE),
])
def test_resume_refuses_a_checkpoint_it_cannot_trust(finished_run, tmp_path, case, sidecar, expected):
    out = copy_run(finished_run, "torch", tmp_path)
    checkpoint = out / "checkpoint.pt"
    _damage(checkpoint, case, tmp_path)
    if sidecar == "matching":
        checkpoint.with_name("checkpoint.pt.sha256").write_text(
            checksum.sidecar_line(checksum.sha256(checkpoint), checkpoint.name))
    before = snapshot(out)
    code, _, stderr = train_main("torch", out, "--epochs", "3", "--resume")
    assert code == EXIT_ERROR
    line = error_line(stderr)
    assert str(checkpoint) in line and expected in line and "--force" in line, line
    assert snapshot(out) == before and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("sidecar, expected", [("kept", CHANGED), ("matching", UNREADABLE)])
def test_resume_refuses_a_torn_keras_checkpoint(finished_run, tmp_path, sidecar, expected):
    out = copy_run(finished_run, "keras", tmp_path)
    checkpoint = out / "checkpoint.npz"
    _damage(checkpoint, "torn", tmp_path)
    if sidecar == "matching":
        checksum.sidecar(checkpoint).write_text(checksum.sidecar_line(checksum.sha256(checkpoint), checkpoint.name))
    code, _, stderr = train_main("keras", out, "--epochs", "3", "--resume")
    assert code == EXIT_ERROR
    line = error_line(stderr)
    assert str(checkpoint) in line and expected in line and "--force" in line, line


class Killed(BaseException):
    """A SIGKILL, simulated: nothing after it runs (but ``finally`` blocks, which a kill skips: they
    only remove temporary files)."""


@pytest.mark.parametrize("moment, survivor", [
    ("before the sidecar lists both", "old"), ("after the sidecar lists both", "old"),
    ("after the checkpoint is renamed", "new"), ("after the sidecar lists the new alone", "new"),
])
def test_a_kill_while_a_checkpoint_is_replaced_leaves_one_that_verifies(tmp_path, monkeypatch, moment, survivor):
    """Each of ``write_checkpoint``'s three renames is a moment a kill may come between; at every one
    the checkpoint left is one its sidecar vouches for, and the next write goes on from it."""
    path = tmp_path / "checkpoint.pt"
    contents = {"old": b"epoch 1" * 1000, "new": b"epoch 2" * 1000}
    runs.write_checkpoint(path, lambda tmp: Path(tmp).write_bytes(contents["old"]))
    real, calls = runs.atomic_replace, []
    # the calls: 0 replaces checkpoint.pt, and its write makes call 1, the sidecar listing both;
    # call 2 lists the new digest alone. (moment, call): the kill comes after that call returns
    after = {("after the sidecar lists both", 1), ("after the checkpoint is renamed", 0),
             ("after the sidecar lists the new alone", 2)}

    def dying(target, write):
        call = len(calls)
        calls.append(target)
        if moment == "before the sidecar lists both" and call == 1:
            raise Killed
        result = real(target, write)
        if (moment, call) in after:
            raise Killed
        return result

    monkeypatch.setattr(runs, "atomic_replace", dying)
    with contextlib.suppress(Killed):
        runs.write_checkpoint(path, lambda tmp: Path(tmp).write_bytes(contents["new"]))
    monkeypatch.setattr(runs, "atomic_replace", real)
    assert path.read_bytes() == contents[survivor]
    assert runs.verify_checkpoint(path) == checksum.sha256(path)
    runs.write_checkpoint(path, lambda tmp: Path(tmp).write_bytes(b"epoch 3"))
    assert runs.verify_checkpoint(path) and len(checksum.sidecar(path).read_text().splitlines()) == 1


WRITER = """
import itertools, sys
from pathlib import Path
from alexnet_training import runs

path = Path(sys.argv[1])
for n in itertools.count():
    runs.write_checkpoint(path, lambda tmp: Path(tmp).write_bytes(n.to_bytes(8, "little") * 65536))
    print(n, flush=True)
"""


def test_real_kills_while_checkpoints_are_written_always_leave_one_that_verifies(tmp_path):
    """The same, with SIGKILL at random moments of a process that writes checkpoints in a loop; the
    temporary files a killed writer leaves are removed by the next write beside them."""
    import random
    import signal
    import subprocess
    import time

    from tests.reference import ROOT, subprocess_env

    path, rng = tmp_path / "checkpoint.pt", random.Random(0)
    for _ in range(16):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, env=subprocess_env(),
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline()  # one checkpoint written: the kill comes while others are
            time.sleep(rng.uniform(0, 0.2))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        assert runs.verify_checkpoint(path) == checksum.sha256(path)
    runs.write_checkpoint(path, lambda tmp: Path(tmp).write_bytes(b"last"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "checkpoint.pt.sha256"]
