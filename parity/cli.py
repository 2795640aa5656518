"""``alexnet-parity``: the parity check a CI job runs, and the converter between weight files.

Exit codes: 0 the models agree (or the port succeeded), 1 they differ, 2 bad input (an unreadable,
truncated, hostile or mismatched file, or wrong arguments), with a message that says what to do.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up noise out
logging.getLogger("tensorflow").setLevel(logging.ERROR)

EXIT_OK, EXIT_DIFFER, EXIT_ERROR = 0, 1, 2


def _options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--option takes KEY=VALUE (e.g. lrn=paper); found {pair!r}")
        options[key] = {"true": True, "false": False}.get(value.lower(), value)  # e.g. logits=true
    return options


def _input_batch(variant: str, batch: int, seed: int, size: int | None):
    from alexnet_spec import get_spec
    from parity.randomize import random_batch

    spec = get_spec(variant)
    side = size or spec.input_size
    return random_batch((batch, spec.channels, side, side), seed)


def check_variant(variant: str, *, seed: int = 0, batch: int = 2, rtol: float, size=None, options=None):
    """Seeded random torch model -> Keras -> torch: the per-layer report and the round trip."""
    import alexnet_keras  # noqa: F401  (imported before the clock starts: the port is what is timed)
    import alexnet_torch
    from parity.compare import compare
    from parity.models import keras_to_torch, torch_to_keras
    from parity.randomize import randomize_torch

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
    report = compare(module, keras_model, _input_batch(variant, batch, seed + 1, size), rtol=rtol, reference=True)
    report.notes.append(
        f"port torch->keras {to_keras_s:.2f} s, keras->torch {to_torch_s:.2f} s; round trip "
        + ("bit-identical" if exact else "NOT bit-identical")
    )
    if not exact:
        report.rows[-1].ok = False
    return report


def check_files(torch_path, keras_path, *, variant=None, seed=0, batch=2, rtol, size=None, options=None):
    """A user's PyTorch checkpoint against a user's Keras file."""
    import alexnet_keras
    from parity import files
    from parity.compare import compare

    record = files.read(torch_path, variant, options)
    module = files.torch_model(record)
    if files.format_of(keras_path) == ".keras":
        keras_model = files.load_keras_model(keras_path)
    else:
        keras_model = alexnet_keras.build(record.variant, num_classes=files.num_classes(record), **record.options)
        alexnet_keras.load_weights(keras_model, keras_path)
    return compare(module, keras_model, _input_batch(record.variant, batch, seed, size), rtol=rtol, variant=record.variant)


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


def check_published_file(path) -> None:
    """A file named like a published checkpoint (alexnet-owt-7be5be79.pth) must carry the hash
    prefix in its name, as torchvision checks on download: a manual download is checked too."""
    from pathlib import Path

    from alexnet_spec import checksum
    from alexnet_spec.imagenet import PRETRAINED

    for weights in PRETRAINED.values():
        if Path(path).name == weights.file_name and Path(path).is_file():
            found = checksum.sha256(path)
            if not found.startswith(weights.sha256_prefix):
                raise ValueError(
                    f"{path} is named like torchvision's {weights.name} checkpoint but its sha256 is {found}, "
                    f"not {weights.sha256_prefix}...: it is truncated or another file. Download it again "
                    f"from {weights.url}, or use --weights {weights.name}."
                )


def main(argv: list[str] | None = None) -> int:
    from parity.compare import DEFAULT_RTOL

    parser = argparse.ArgumentParser(prog="alexnet-parity", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="prove a PyTorch and a Keras AlexNet compute the same thing")
    check.add_argument("--variant", help="with no files: check a seeded random model of this variant")
    check.add_argument("--torch", metavar="FILE", help="PyTorch weights (.pt, .pth, .safetensors)")
    check.add_argument("--keras", metavar="FILE", help="Keras model or weights (.keras, .weights.h5, .safetensors)")
    check.add_argument("--all", action="store_true", help="check every variant")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--batch", type=int, help="batch size (default 2; 8 with --train-step)")
    check.add_argument("--size", type=int, help="input height = width (default: the variant's own)")
    check.add_argument("--rtol", type=float, help=f"max error relative to each layer's scale (default {DEFAULT_RTOL:.0e}; "
                       "training mode: parity.train.TRAIN_RTOL)")
    check.add_argument("--train-step", action="store_true",
                       help="training parity: a forward pass with batch statistics, then SGD steps (dropout off)")
    check.add_argument("--steps", type=int, default=2, help="with --train-step: SGD steps to take and compare")
    check.add_argument("--option", action="append", metavar="KEY=VALUE", help="build option, e.g. lrn=paper")
    check.add_argument("--json", action="store_true", help="print JSON instead of the table")

    port = sub.add_parser("port", help="convert weights between .pt, .safetensors, .keras and .weights.h5")
    port.add_argument("files", nargs="+", metavar="FILE", help="SOURCE TARGET, or only TARGET with --weights")
    port.add_argument("--weights", metavar="NAME",
                      help="convert published weights instead of a file, e.g. IMAGENET1K_V1 (torchvision downloads them)")
    port.add_argument("--variant", help="the variant, when the source file cannot tell")
    port.add_argument("--option", action="append", metavar="KEY=VALUE", help="build option, e.g. lrn=paper")
    port.add_argument("--force", action="store_true", help="overwrite the target if it exists")
    port.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="write a model as ONNX and verify it in onnxruntime against PyTorch and float64")
    export.add_argument("model", metavar="MODEL", help="a variant name (seeded random weights) or a weight file")
    export.add_argument("target", metavar="OUT.onnx")
    export.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                        help="torch.onnx.export(dynamo=True) (default) or the TorchScript exporter (dynamo=False)")
    export.add_argument("--variant", help="the variant, when the weight file cannot tell")
    export.add_argument("--option", action="append", metavar="KEY=VALUE", help="build option, e.g. lrn=paper")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--batch", type=int, default=2, help="images in the verification batch")
    export.add_argument("--rtol", type=float, help="max error against float64, relative to the output scale (default 2e-6)")
    export.add_argument("--force", action="store_true", help="overwrite the target if it exists")
    export.add_argument("--json", action="store_true")

    args = parser.parse_args(argv)
    try:
        if args.command == "port":
            return _port(args)
        if args.command == "export":
            return _export(args)
        return _check(args, parser)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError, PermissionError, KeyError) as err:
        message = str(err) if not isinstance(err, KeyError) else f"missing entry {err}"
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": message}))
        else:
            print(f"alexnet-parity: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _check(args, parser) -> int:
    import alexnet_torch

    from parity.compare import DEFAULT_RTOL

    options = _options(args.option)
    if args.train_step and (args.torch or args.keras or args.size):
        parser.error("--train-step checks a seeded random model at the variant's own size: give --variant or --all")
    if args.torch or args.keras:
        if not (args.torch and args.keras):
            parser.error("check with files needs both --torch FILE and --keras FILE")
        reports = [
            check_files(args.torch, args.keras, variant=args.variant, seed=args.seed, batch=2 if args.batch is None else args.batch,
                        rtol=DEFAULT_RTOL if args.rtol is None else args.rtol, size=args.size, options=options)
        ]
    else:
        if not (args.variant or args.all):
            parser.error("give --variant NAME, --all, or --torch FILE --keras FILE")
        variants = alexnet_torch.VARIANTS if args.all else (args.variant,)
        if args.train_step:
            reports = [_train_step(v, args, options) for v in variants]
        else:
            reports = [
                check_variant(v, seed=args.seed, batch=2 if args.batch is None else args.batch, rtol=DEFAULT_RTOL if args.rtol is None else args.rtol,
                              size=args.size, options=options)
                for v in variants
            ]
    if args.json:
        print(json.dumps({"ok": all(r.ok for r in reports), "reports": [r.to_dict() for r in reports]}, indent=1))
    else:
        print("\n\n".join(str(r) for r in reports))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_DIFFER


def _train_step(variant: str, args, options: dict):
    from parity.train import TRAIN_RTOL, check_train_step

    return check_train_step(variant, seed=args.seed, batch=8 if args.batch is None else args.batch, steps=args.steps,
                            rtol=TRAIN_RTOL if args.rtol is None else args.rtol, options=options)


def _port(args) -> int:
    from parity import files

    from alexnet_spec import checksum

    if args.weights:
        if len(args.files) != 1:
            raise ValueError(f"port --weights {args.weights} takes one TARGET file; found {len(args.files)}: {args.files}")
        source, (target,) = args.weights, args.files
        record = published_weights(args.weights, args.variant)
    else:
        if len(args.files) != 2:
            raise ValueError(f"port takes SOURCE TARGET (or --weights NAME TARGET); found {len(args.files)} files")
        source, target = args.files
        check_published_file(source)
        record = files.read(source, args.variant, _options(args.option))
    path = files.write(record, target, overwrite=args.force)
    checksum.write_sidecar(path, overwrite=True)  # the file was just (re)written: its old sidecar is stale
    summary = {"ok": True, "source": source, "target": str(path), "variant": record.variant,
               "options": record.options, "tensors": len(record.state)}
    print(json.dumps(summary) if args.json else f"wrote {path} ({record.variant}, {len(record.state)} tensors)")
    return EXIT_OK


def _export(args) -> int:
    from pathlib import Path

    from parity import onnx_export

    if Path(args.target).exists() and not args.force:
        raise FileExistsError(f"{args.target} exists; pass --force to overwrite it")
    model = onnx_export.source_model(args.model, variant=args.variant, options=_options(args.option), seed=args.seed)
    x = onnx_export.example_batch(model, batch=args.batch, seed=args.seed + 1)
    rtol = onnx_export.DEFAULT_RTOL if args.rtol is None else args.rtol
    report = onnx_export.ExportReport([onnx_export.export_and_verify(model, args.target, x, exporter=args.exporter, rtol=rtol)], rtol)
    print(report.to_json(indent=1) if args.json else report)
    return EXIT_OK if report.ok else EXIT_DIFFER


if __name__ == "__main__":
    sys.exit(main())
