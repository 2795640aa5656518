"""The checks ``alexnet-parity check`` runs, as library functions: a seeded random model of a
variant ported and compared, a user's pair of files compared, and published weights fetched."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from parity.compare import ParityReport


def input_batch(variant: str, batch: int, seed: int, size: int | None = None) -> np.ndarray:
    """A seeded NCHW batch at the variant's input size; refused up front if it cannot fit in memory
    (a run that starts and is then killed by the system tells the user nothing)."""
    from alexnet_spec import get_spec
    from parity.randomize import random_batch

    spec = get_spec(variant)
    side = size or spec.input_size
    if batch < 1 or side < 1:
        raise ValueError(f"batch and size must be positive; found batch {batch}, size {side}")
    need = batch * spec.channels * side * side * BYTES_PER_INPUT_VALUE
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"a check of {batch} {side}x{side} images needs about {need / 2**30:.1f} GiB (every layer's output "
            f"in both frameworks and in float64); this machine has {have / 2**30:.1f} GiB available. Use a "
            "smaller --batch."
        )
    return random_batch((batch, spec.channels, side, side), seed)


# Peak memory of a check per input value (float32), beyond the models themselves: the recorded layer
# outputs of both frameworks and the float64 reference. Measured: `check --variant paper` peaked at
# 2.93 GB with --batch 4 and 3.63 GB with --batch 20, 283 bytes per input value; rounded up.
BYTES_PER_INPUT_VALUE = 300


def available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_variant(variant: str, *, seed: int = 0, batch: int = 2, rtol: float, size=None, options=None) -> ParityReport:
    """Seeded random torch model -> Keras -> torch: the per-layer report and the round trip."""
    import alexnet_keras  # noqa: F401  (imported before the clock starts: the port is what is timed)
    import alexnet_torch
    from parity.compare import compare
    from parity.models import keras_to_torch, torch_to_keras
    from parity.randomize import randomize_torch

    x = input_batch(variant, batch, seed + 1, size)
    module = randomize_torch(alexnet_torch.build(variant, **(options or {})), seed)
    start = time.perf_counter()
    keras_model = torch_to_keras(module)
    to_keras_s = time.perf_counter() - start
    start = time.perf_counter()
    back = keras_to_torch(keras_model)
    to_torch_s = time.perf_counter() - start
    before, after = module.state_dict(), back.state_dict()
    exact = list(before) == list(after) and all(
        before[k].shape == after[k].shape and bool((before[k] == after[k]).all()) for k in before
    )
    report = compare(module, keras_model, x, rtol=rtol, reference=True)
    report.notes.append(
        f"port torch->keras {to_keras_s:.2f} s, keras->torch {to_torch_s:.2f} s; round trip "
        + ("bit-identical" if exact else "NOT bit-identical")
    )
    if not exact:
        report.rows[-1].ok = False
    return report


def check_files(torch_path, keras_path, *, variant=None, seed=0, batch=2, rtol, size=None, options=None) -> ParityReport:
    """A user's PyTorch checkpoint against a user's Keras file (both of one variant)."""
    import alexnet_keras
    from parity import files
    from parity.compare import compare
    from parity.models import keras_variant

    record = files.read(torch_path, variant, options)
    x = input_batch(record.variant, batch, seed, size)
    module = files.torch_model(record)
    if files.format_of(keras_path) == ".keras":
        keras_model = files.load_keras_model(keras_path)
        found = keras_variant(keras_model)
        if found != record.variant:
            raise ValueError(
                f"the two files hold different networks: {torch_path} the {record.variant!r} AlexNet, "
                f"{keras_path} the {found!r} one. Compare files of one variant (port one into the other's "
                "format with `alexnet-parity port`)."
            )
    else:
        keras_model = alexnet_keras.build(record.variant, num_classes=files.num_classes(record), **record.options)
        alexnet_keras.load_weights(keras_model, keras_path)
    return compare(module, keras_model, x, rtol=rtol, variant=record.variant)


def published_weights(name: str, variant: str | None):
    """Published weights (torchvision's enum: downloaded and hash-checked into torch's cache)."""
    from alexnet_spec.exchange import Exchange
    from alexnet_spec.imagenet import get_pretrained

    weights = get_pretrained(name)
    if variant not in (None, weights.variant):
        raise ValueError(f"{name} are weights of the {weights.variant!r} variant, not {variant!r}")
    import alexnet_torch

    try:
        module = alexnet_torch.build(weights.variant, weights=name)
    except OSError as err:  # no network, proxy, disk full: urllib's errors are OSErrors
        raise ValueError(
            f"could not get {name} ({weights.url}) through torchvision: {err}. Converting needs network "
            f"once; or download {weights.file_name} elsewhere and run `alexnet-parity port "
            f"{weights.file_name} TARGET`."
        ) from err
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return Exchange(state, weights.variant, dict(module.options))


def check_published_file(path) -> bool:
    """A file named like a published checkpoint (alexnet-owt-7be5be79.pth) must carry the hash
    prefix in its name, as torchvision checks on download: a manual download is checked too.
    True when ``path`` was such a file (and so verified)."""
    from alexnet_spec.imagenet import PRETRAINED

    for weights in PRETRAINED.values():
        if Path(path).name == weights.file_name and Path(path).is_file():
            found, matches = weights.file_digest(path)
            if not matches:
                raise ValueError(
                    f"{path} is named like torchvision's {weights.name} checkpoint but its sha256 is {found}, "
                    f"not {weights.sha256_prefix}...: it is truncated or another file. Download it again "
                    f"from {weights.url}, or use --weights {weights.name}."
                )
            return True
    return False
