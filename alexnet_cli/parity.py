"""``alexnet-parity``: the parity check a CI job runs, and the converter between weight files.

Exit codes: 0 the models agree (or the port succeeded), 1 they differ, 2 anything else (an
unreadable, truncated, hostile or mismatched file, wrong arguments, no memory or network), with one
line that says what to do; ``--debug`` adds the traceback. With ``--json`` stdout holds one JSON
object and nothing else, errors included.
"""

from __future__ import annotations

import sys

from alexnet_cli.console import (EXIT_DIFFER, EXIT_OK, ArgumentParser, UsageError, import_frameworks, positive_float,
                                 positive_int, run, wants, warn_unverified)


def parse_options(pairs: list[str] | None) -> dict:
    """``--option KEY=VALUE`` pairs as build options; true and false become booleans."""
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--option takes KEY=VALUE (e.g. lrn=paper); found {pair!r}")
        options[key] = {"true": True, "false": False}.get(value.lower(), value)  # e.g. logits=true
    return options


def parser() -> ArgumentParser:
    from parity.compare import DEFAULT_RTOL

    root = ArgumentParser(prog="alexnet-parity", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="prove a PyTorch and a Keras AlexNet compute the same thing")
    check.add_argument("--variant", help="with no files: check a seeded random model of this variant")
    check.add_argument("--torch", metavar="FILE", help="PyTorch weights (.pt, .pth, .safetensors)")
    check.add_argument("--keras", metavar="FILE", help="Keras model or weights (.keras, .weights.h5, .safetensors)")
    check.add_argument("--all", action="store_true", help="check every variant")
    check.add_argument("--seed", type=int, default=0, help="seed of the random weights and input batch")
    check.add_argument("--batch", type=positive_int, help="batch size (default 2; 8 with --train-step)")
    check.add_argument("--size", type=positive_int, help="input height = width (default: the variant's own)")
    check.add_argument("--rtol", type=positive_float, help=f"max error relative to each layer's scale (default {DEFAULT_RTOL:.0e}; "
                       "training mode: parity.steps.TRAIN_RTOL)")
    check.add_argument("--train-step", action="store_true",
                       help="training parity: a forward pass with batch statistics, then SGD steps (dropout off)")
    check.add_argument("--steps", type=positive_int, default=2, help="with --train-step: SGD steps to take and compare")
    check.add_argument("--train-steps", type=positive_int, metavar="N",
                       help="run parity: N SGD steps on the same batches in both frameworks and float64, each run on "
                            "its own (dropout off); per-step losses, final weights, the step where they drift apart")
    check.add_argument("--replicas", type=positive_int, metavar="N",
                       help="data parallelism: N replicas of each distributed engine (global batch --batch, "
                            "--steps SGD steps, dropout off) reach one process's weights within the fp32 floor")
    check.add_argument("--engine", default="all", help="with --replicas: one engine (torchrun/gloo, 'tf MirroredStrategy', "
                       "'tf MultiWorkerMirroredStrategy', 'jax DataParallel'), or all (default)")
    check.add_argument("--option", action="append", metavar="KEY=VALUE", help="build option, e.g. lrn=paper")
    check.add_argument("--init", metavar="FILE", help="with --train-steps: start both frameworks from this weight "
                                                      "file (alexnet-train init writes one), as alexnet-train --init does")
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of the table")
    check.add_argument("--debug", action="store_true", help="show the traceback of an error")

    port = sub.add_parser("port", help="convert weights between .pt, .safetensors, .keras and .weights.h5",
                          description="Convert weights between .pt, .safetensors, .keras and .weights.h5. "
                                      "A .safetensors or .keras file keeps the build options weights cannot tell "
                                      "(the paper network's lrn, the cifar network's logits); a .pt or .weights.h5 "
                                      "holds weights only: port then names the options it leaves behind, to be "
                                      "given back with --option when the file is read (alexnet-eval, check, port).")
    port.add_argument("files", nargs="+", metavar="FILE", help="SOURCE TARGET, or only TARGET with --weights")
    port.add_argument("--weights", metavar="NAME",
                      help="convert published weights instead of a file, e.g. IMAGENET1K_V1 (torchvision downloads them)")
    port.add_argument("--variant", help="the variant, when the source file cannot tell")
    port.add_argument("--option", action="append", metavar="KEY=VALUE", help="build option, e.g. lrn=paper")
    port.add_argument("--sha1", metavar="HEX", help="refuse SOURCE unless its SHA-1 is HEX (the model zoo publishes "
                      "bvlc_alexnet.caffemodel's in its readme)")
    port.add_argument("--force", action="store_true", help="overwrite the target if it exists")
    port.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    port.add_argument("--debug", action="store_true", help="show the traceback of an error")

    export = sub.add_parser("export", help="write a model as ONNX and verify it in onnxruntime against PyTorch and float64")
    export.add_argument("model", metavar="MODEL", help="a variant name (seeded random weights) or a weight file")
    export.add_argument("target", metavar="OUT.onnx", help="the ONNX file to write")
    export.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                        help="torch.onnx.export(dynamo=True) (default) or the TorchScript exporter (dynamo=False)")
    export.add_argument("--variant", help="the variant, when the weight file cannot tell")
    export.add_argument("--option", action="append", metavar="KEY=VALUE", help="build option, e.g. lrn=paper")
    export.add_argument("--seed", type=int, default=0, help="seed of the random weights and input batch")
    export.add_argument("--batch", type=positive_int, default=2, help="images in the verification batch")
    export.add_argument("--rtol", type=positive_float, help="max error against float64, relative to the output scale (default 2e-6)")
    export.add_argument("--force", action="store_true", help="overwrite the target if it exists")
    export.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    export.add_argument("--debug", action="store_true", help="show the traceback of an error")

    kernels = sub.add_parser("kernels", help="draw conv1's kernels, one block per tower (the paper's Figure 3)")
    kernels.add_argument("weights", metavar="FILE", help="any weight file, .caffemodel included")
    kernels.add_argument("--out", required=True, metavar="FIG.png", help="the PNG to write")
    kernels.add_argument("--channels", choices=("auto", "rgb", "bgr"), default="auto",
                         help="the order conv1 reads (auto: bgr for a .caffemodel, else rgb); "
                              "bgr for a file ported from Caffe")
    kernels.add_argument("--variant", help="the variant, when the weight file cannot tell")
    kernels.add_argument("--force", action="store_true", help="overwrite FIG.png if it exists")
    kernels.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    kernels.add_argument("--debug", action="store_true", help="show the traceback of an error")

    return root


def main(argv: list[str] | None = None) -> int:
    def body():
        args = parser().parse_args(argv)
        import_frameworks(torch=True, keras=True)
        if args.command == "port":
            return _port(args)
        if args.command == "export":
            return _export(args)
        if args.command == "kernels":
            from alexnet_cli.plot import plot_kernels

            path = plot_kernels(args.weights, args.out, channels=args.channels, variant=args.variant, overwrite=args.force)
            return EXIT_OK, {"ok": True, "figure": str(path)}, f"wrote {path}"
        return _check(args)

    return run("alexnet-parity", body, as_json=wants(argv, "--json"), debug=wants(argv, "--debug"))


def _check(args):
    import alexnet_torch
    from parity.check import check_files, check_variant
    from parity.compare import DEFAULT_RTOL

    options = parse_options(args.option)
    rtol = DEFAULT_RTOL if args.rtol is None else args.rtol
    if args.init and not args.train_steps:
        raise UsageError("--init FILE is where --train-steps N starts; add --train-steps N")
    if args.replicas:
        return _replicas(args)
    if (args.train_step or args.train_steps) and (args.torch or args.keras or args.size):
        raise UsageError("--train-step checks a seeded random model at the variant's own size: give --variant or --all")
    if args.torch or args.keras:
        if not (args.torch and args.keras):
            raise UsageError("check with files needs both --torch FILE and --keras FILE")
        reports = [check_files(args.torch, args.keras, variant=args.variant, seed=args.seed, batch=args.batch or 2,
                               rtol=rtol, size=args.size, options=options)]
        warn_unverified("alexnet-parity", args.torch, args.keras)
    else:
        if not (args.variant or args.all):
            raise UsageError("give --variant NAME, --all, or --torch FILE --keras FILE")
        variants = alexnet_torch.VARIANTS if args.all else (args.variant,)
        if args.train_steps:
            from parity.steps import check_train_steps

            start = _read_init(args.init, variants)
            reports = [check_train_steps(v, steps=args.train_steps, seed=args.seed, batch=args.batch or 16,
                                         options=options, start=start) for v in variants]
        elif args.train_step:
            reports = [_train_step(v, args, options) for v in variants]
        else:
            reports = [check_variant(v, seed=args.seed, batch=args.batch or 2, rtol=rtol, size=args.size, options=options)
                       for v in variants]
    ok = all(r.ok for r in reports)
    payload = {"ok": ok, "reports": [r.to_dict() for r in reports]}
    return (EXIT_OK if ok else EXIT_DIFFER), payload, "\n\n".join(str(r) for r in reports)


def _read_init(path, variants):
    """The exchange record --init names (None without it), of the one variant checked."""
    if path is None:
        return None
    from parity import files

    record = files.read(path)
    if tuple(variants) != (record.variant,):
        raise UsageError(f"{path} holds the {record.variant} network; pass --variant {record.variant} (not --all "
                         "or another variant)")
    return record


def _replicas(args):
    """One report per variant, every engine a row of its table, judged by one criterion (parity.replicas)."""
    import alexnet_torch
    from parity.replicas import check_arguments, check_replicas, default_batch, engine_names

    if args.torch or args.keras or args.size or args.option or args.train_step or args.train_steps:
        raise UsageError("--replicas checks freshly initialized networks of --variant (or --all) on the digits; "
                         "it takes --engine, --steps, --batch and --seed only")
    if not (args.variant or args.all):
        raise UsageError("--replicas needs --variant NAME or --all")
    variants = alexnet_torch.VARIANTS if args.all else (args.variant,)
    try:  # refused before anything starts
        names = engine_names(args.engine)
        for variant in variants:
            check_arguments(variant, args.replicas, args.steps, args.batch or default_batch(variant, args.replicas))
    except ValueError as err:
        raise UsageError(str(err)) from None
    reports = [check_replicas(names, variant, args.replicas, args.steps, args.batch, args.seed) for variant in variants]
    ok = all(r.ok for r in reports)
    return (EXIT_OK if ok else EXIT_DIFFER), {"ok": ok, "reports": [r.to_dict() for r in reports]}, \
        "\n\n".join(str(r) for r in reports)


def _train_step(variant: str, args, options: dict):
    from parity.steps import TRAIN_RTOL, check_train_step

    return check_train_step(variant, seed=args.seed, batch=args.batch or 8, steps=args.steps,
                            rtol=TRAIN_RTOL if args.rtol is None else args.rtol, options=options)


def _port(args):
    from parity import files
    from parity.check import check_published_file, published_weights

    if args.weights:
        if len(args.files) != 1:
            raise UsageError(f"port --weights {args.weights} takes one TARGET file; found {len(args.files)}: {args.files}")
        if args.sha1:
            raise UsageError("--sha1 checks a SOURCE file; with --weights torchvision checks the download itself")
        source, (target,) = args.weights, args.files
        record = published_weights(args.weights, args.variant)
        verified = True  # torchvision checks the download's hash
    else:
        if len(args.files) != 2:
            raise UsageError(f"port takes SOURCE TARGET (or --weights NAME TARGET); found {len(args.files)} files")
        source, target = args.files
        if args.sha1:
            from alexnet_spec.caffe import check_sha1
            from alexnet_spec.messages import require_file

            check_sha1(require_file(source), args.sha1)
        verified = check_published_file(source) or bool(args.sha1)
        record = files.read(source, args.variant, parse_options(args.option))
    path = files.write(record, target, overwrite=args.force, sidecar=True)
    if not verified:
        warn_unverified("alexnet-parity", source)
    summary = {"ok": True, "source": source, "target": str(path), "variant": record.variant,
               "options": record.options, "tensors": len(record.state)}
    text = f"wrote {path} ({record.variant}, {len(record.state)} tensors)"
    if lost := files.options_not_kept(record, path):
        summary["options_not_kept"] = lost
        summary["note"] = _lost_options_note(files.format_of(path), lost)
        text += f"\nnote: {summary['note']}"
    return EXIT_OK, summary, text


def _lost_options_note(fmt: str, lost: dict) -> str:
    """How to give back the build options a .pt or .weights.h5 target cannot hold."""
    pairs = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in lost.items()]
    flags = " ".join(f"--option {pair}" for pair in pairs)
    return (f"a {fmt} file holds weights only, not the build options ({', '.join(pairs)}); give them back when "
            f"you read it: alexnet-eval ... {flags} (or alexnet-parity check/port ... {flags}), or port to "
            ".safetensors or .keras, which keep them")


def _export(args):
    from parity import onnx_export

    model = onnx_export.source_model(args.model, variant=args.variant, options=parse_options(args.option), seed=args.seed)
    x = onnx_export.example_batch(model, batch=args.batch, seed=args.seed + 1)
    rtol = onnx_export.DEFAULT_RTOL if args.rtol is None else args.rtol
    row = onnx_export.export_and_verify(model, args.target, x, exporter=args.exporter, rtol=rtol, overwrite=args.force)
    report = onnx_export.ExportReport([row], rtol)
    return (EXIT_OK if report.ok else EXIT_DIFFER), report.to_dict(), str(report)


if __name__ == "__main__":
    sys.exit(main())
