"""Writing weight files: no-clobber enforced by the write itself, a file and its checksum that
never disagree after a race or a kill, no temporary files left for good, deterministic bytes,
and the mode the umask asks for."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from alexnet_spec import checksum, exchange, files
from tests.reference import ROOT, subprocess_env


def _write_text(text):
    return lambda tmp: Path(tmp).write_text(text)


def test_a_target_that_appears_during_the_write_is_not_replaced(tmp_path):
    """The existence check happens when the file is published, not only before the write."""
    target = tmp_path / "m.pt"

    def slow_write(tmp):
        Path(tmp).write_text("mine")
        target.write_text("theirs")  # another writer published meanwhile

    with pytest.raises(FileExistsError, match="already exists"):
        files.atomic_write(target, slow_write, sidecar=True)
    assert target.read_text() == "theirs" and not checksum.sidecar(target).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary file left


def test_racing_writers_one_wins_and_its_checksum_matches(tmp_path):
    target = tmp_path / "m.safetensors"
    barrier = threading.Barrier(8)
    outcomes = []

    def writer(i):
        def write(tmp):
            Path(tmp).write_text(f"writer {i}\n" * 1000)
            barrier.wait(timeout=30)  # every writer has its bytes ready before any publishes

        try:
            files.atomic_write(target, write, sidecar=True)
            outcomes.append("won")
        except FileExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]
    assert checksum.verify(target, required=True) == checksum.sha256(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "m.safetensors.sha256"]


def test_two_concurrent_ports_to_one_path(tmp_path):
    """The CLI as two users would run it at once: exactly one writes, the other exits 2."""
    import alexnet_torch
    from parity import randomize_torch

    source = tmp_path / "cifar.pt"
    alexnet_torch.save_weights(randomize_torch(alexnet_torch.build("cifar"), seed=3), source)
    target = tmp_path / "out.safetensors"
    command = [sys.executable, "-m", "parity", "port", str(source), str(target)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=subprocess_env(), cwd=ROOT) for _ in range(2)]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=300)
        finally:
            p.kill()
        results.append((p.returncode, out, err))
    assert sorted(code for code, *_ in results) == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert "already exists" in loser and "Traceback" not in loser
    checksum.verify(target, required=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar.pt", "out.safetensors", "out.safetensors.sha256"]


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from alexnet_spec import files
target, where = Path(sys.argv[1]), sys.argv[2]

def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)

if where == "write":
    def write(tmp):
        Path(tmp).write_text("half of it")
        die()
    files.atomic_write(target, write, sidecar=True)
else:  # between the sidecar and the file
    files._publish = die
    files.atomic_write(target, lambda tmp: Path(tmp).write_text("all of it"), sidecar=True)
"""


@pytest.mark.parametrize("where", ["write", "publish"])
def test_a_killed_writer_leaves_nothing_the_next_write_does_not_clean(tmp_path, where):
    target = tmp_path / "m.keras"
    run = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target), where], env=subprocess_env(),
                         cwd=ROOT, timeout=120)
    assert run.returncode == -signal.SIGKILL
    assert not target.exists()  # never a half-written file under the real name
    assert os.listdir(tmp_path)  # it did leave something: a temporary file or an orphan sidecar
    files.atomic_write(target, _write_text("second try"), sidecar=True)  # no --force needed
    assert checksum.verify(target, required=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "m.keras.sha256"]


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    target = tmp_path / "m.pt"
    live = files.temp_name(target)  # this process is alive
    live.write_text("being written")
    files.atomic_write(target, _write_text("x"))
    assert live.exists()


def test_replacing_drops_a_sidecar_that_described_the_old_bytes(tmp_path):
    target = tmp_path / "m.pt"
    files.atomic_write(target, _write_text("old"), sidecar=True)
    files.atomic_write(target, _write_text("new"), overwrite=True)
    assert target.read_text() == "new" and not checksum.sidecar(target).exists()
    files.atomic_write(target, _write_text("newer"), overwrite=True, sidecar=True)
    assert checksum.verify(target, required=True) == checksum.sha256(target)


SAVE_EXCHANGE = """
import sys
import numpy as np
from alexnet_spec import exchange
state = {f"features.{i}.weight": np.full((2, i + 1), i, np.float32) for i in range(6)}
exchange.save(sys.argv[1], exchange.Exchange(state, "cifar", {"logits": True}))
"""


def test_the_same_weights_give_the_same_bytes_in_every_process(tmp_path):
    """safetensors writes its metadata in hash-map order, which changes from process to process."""
    paths = [tmp_path / f"{i}.safetensors" for i in range(4)]
    for path in paths:
        subprocess.run([sys.executable, "-c", SAVE_EXCHANGE, str(path)], env=subprocess_env(), cwd=ROOT,
                       check=True, timeout=120)
    assert len({path.read_bytes() for path in paths}) == 1
    assert exchange.load(paths[0]).options == {"logits": True}


def test_torch_files_do_not_depend_on_their_name(tmp_path, paper_torch):
    import alexnet_torch

    alexnet_torch.save_weights(paper_torch, tmp_path / "a.pt")
    alexnet_torch.save_weights(paper_torch, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


@pytest.mark.parametrize("umask", [0o022, 0o077])
@pytest.mark.parametrize("name", ["m.safetensors", "m.pt", "m.weights.h5"])
def test_files_follow_the_umask(tmp_path, umask, name):
    import alexnet_keras
    import alexnet_torch

    previous = os.umask(umask)
    try:
        if name.endswith(".h5"):
            alexnet_keras.save_weights(alexnet_keras.build("cifar"), tmp_path / name, sidecar=True)
        else:
            alexnet_torch.save_weights(alexnet_torch.build("cifar"), tmp_path / name, sidecar=True)
    finally:
        os.umask(previous)
    for path in (tmp_path / name, checksum.sidecar(tmp_path / name)):
        assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~umask), path.name


def test_a_name_too_long_for_the_file_system_is_refused_before_writing(tmp_path):
    target = tmp_path / ("w" * 250 + ".safetensors")
    with pytest.raises(ValueError, match="too long"):
        exchange.save(target, exchange.Exchange({"a": np.zeros(1, np.float32)}, "cifar"))
    assert not os.listdir(tmp_path)


def test_a_directory_is_not_a_target(tmp_path):
    (tmp_path / "m.pt").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        files.atomic_write(tmp_path / "m.pt", _write_text("x"), overwrite=True)
