"""alexnet-eval reads every format `alexnet-parity port` writes, in both frameworks; the build
options a format cannot hold are named by port and given back with --option; a weight file no
sidecar vouches for is used with a warning."""

import contextlib
import io
import json
import shutil

import pytest
import torch

import alexnet_torch
import parity
from alexnet_cli import evaluate
from alexnet_cli.parity import main as parity_main

FORMATS = (".safetensors", ".pt", ".keras", ".weights.h5")
OPTIONLESS = (".pt", ".weights.h5")  # hold weights only
DATA = ("--data", "digits", "--limit", "32", "--batch-size", "16")


def _run(main, argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    """``ported(logits)``: a folder with a seeded cifar network as .safetensors (sidecar included)
    and `port`'s output in each other format, and port's printed output per format. The last
    BatchNorm's scale makes the logits large, so their softmax underflows: read as probabilities
    (logits dropped) the loss is clamped and differs from the loss of the logits."""
    made = {}

    def get(logits: bool):
        if logits not in made:
            folder = tmp_path_factory.mktemp(f"logits-{logits}")
            model = parity.randomize_torch(alexnet_torch.build("cifar", logits=logits), seed=3)
            with torch.no_grad():
                next(m for m in reversed(model.classifier) if hasattr(m, "weight")).weight.mul_(1000.0)
            source = alexnet_torch.save_weights(model, folder / "m.safetensors", sidecar=True)
            printed = {}
            for fmt in FORMATS[1:]:
                code, printed[fmt], err = _run(parity_main, ["port", str(source), str(folder / f"m{fmt}")])
                assert code == 0, err
            made[logits] = folder, printed
        return made[logits]

    return get


def _center(framework, path, *extra) -> dict:
    code, out, err = _run(evaluate.main, ["--framework", framework, "--weights", str(path), *DATA, "--json", *extra])
    assert code == 0, err
    return json.loads(out)["center"]


def _same(a: dict, b: dict) -> bool:
    return a["top1"] == b["top1"] and a["top5"] == b["top5"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)


@pytest.fixture(scope="module")
def reference(ported):
    """torch's numbers for the .safetensors the other files were ported from."""
    return _center("torch", ported(False)[0] / "m.safetensors")


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_eval_reads_every_format_port_writes(ported, reference, framework, fmt):
    folder, _ = ported(False)
    variant = [] if fmt in (".safetensors", ".keras") else ["--variant", "cifar"]  # those two name it
    assert _same(_center(framework, folder / f"m{fmt}", *variant), reference)


@pytest.mark.parametrize("fmt", FORMATS[1:])
def test_the_logits_option_travels_or_port_says_how_to_give_it_back(ported, fmt):
    folder, printed = ported(True)
    original = _center("torch", folder / "m.safetensors")
    given = ["--variant", "cifar"]
    if fmt in OPTIONLESS:
        note = printed[fmt].splitlines()[-1]
        assert note.startswith("note: ") and f"a {fmt} file holds weights only" in note
        assert "--option logits=true" in note
        assert not _same(_center("torch", folder / f"m{fmt}", *given), original)  # the option matters here
        given += ["--option", "logits=true"]
    else:
        assert "note" not in printed[fmt]
    for framework in ("torch", "keras"):
        assert _same(_center(framework, folder / f"m{fmt}", *given), original), framework


def test_eval_warns_when_no_sidecar_verified_the_file(ported, tmp_path):
    folder, _ = ported(False)
    argv = ["--framework", "torch", *DATA]
    code, _, err = _run(evaluate.main, [*argv, "--weights", str(folder / "m.safetensors")])
    assert code == 0 and "warning" not in err
    bare = shutil.copy(folder / "m.safetensors", tmp_path / "m.safetensors")
    code, _, err = _run(evaluate.main, [*argv, "--weights", str(bare)])
    assert code == 0
    assert err.splitlines() == [f"alexnet-eval: warning: nothing verified {bare}: it has no m.safetensors.sha256 "
                                "beside it, so a truncated or altered file would go unnoticed. `alexnet-parity "
                                "port` writes one with every file; for a file you trust, write it with "
                                "`sha256sum m.safetensors > m.safetensors.sha256` in its folder."]


def test_eval_refuses_an_option_the_variant_does_not_take(ported):
    folder, _ = ported(False)
    code, _, err = _run(evaluate.main, ["--framework", "torch", "--weights", str(folder / "m.pt"), "--variant", "cifar",
                                        *DATA, "--option", "lrn=paper"])
    assert code == 2 and "--option lrn: the 'cifar' AlexNet takes only logits" in err
