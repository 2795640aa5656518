"""``alexnet-train``: train AlexNet in PyTorch or Keras from one recipe, on the same batches.

    alexnet-train --framework torch --variant cifar --recipe cifar --data digits --epochs 10 --out runs/torch
    alexnet-train plot runs/torch runs/keras --out curves.png
    torchrun --standalone --nproc_per_node 2 -m alexnet_cli.train --framework torch --variant cifar ...
    alexnet-train --framework keras --distribute mirrored --devices 2 ...   (docs/scaling.md)

Under torchrun (``WORLD_SIZE`` > 1) each process is a data-parallel replica
(``alexnet_torch.distributed``): ``--batch-size`` stays the global batch, rank 0 alone prints and
writes, and the run folder is the one a single process would write. Keras distributes through its
own engines (``--distribute``, ``alexnet_keras.distributed``) with ``model.fit`` as the loop.

The run folder holds ``run.json``, ``metrics.csv``, a checkpoint of the last epoch and, at the end,
``model.safetensors`` (readable by ``alexnet-parity port/check``). An existing run is never
overwritten without ``--resume`` (continue it) or ``--force`` (replace it). Bad input (a missing
or empty data folder, a wrong layout, a corrupt image, a class count the model cannot take, a
resume with another run's settings) is one line on stderr, exit 2, and nothing written.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

from alexnet_cli.console import (
    EXIT_OK,
    ArgumentParser,
    UsageError,
    check_installed,
    import_frameworks,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    run,
    wants,
)
from alexnet_cli.devices import add_device_argument, add_precision_argument

FRAMEWORKS = ("torch", "keras")
# set by a local multi-worker launcher in its workers' environment: the pid holding their run folder's lock
LAUNCHER_ENV = "ALEXNET_TRAIN_LOCKED_BY"
DEFAULT_TIMEOUT_S = 300  # alexnet_torch.distributed.DEFAULT_TIMEOUT_S, without importing torch for --help


def parser() -> ArgumentParser:
    from alexnet_spec import VARIANTS
    from alexnet_training.recipes import RECIPES

    p = ArgumentParser(prog="alexnet-train", description=__doc__.splitlines()[0],
                       epilog="alexnet-train plot RUN_DIR... --out FIG.png draws the curves of runs")
    p.add_argument("--framework", required=True, choices=FRAMEWORKS)
    p.add_argument("--variant", required=True, choices=VARIANTS)
    p.add_argument("--recipe", choices=tuple(RECIPES), help="default: the variant's own (cifar for cifar, ...)")
    p.add_argument("--data", required=True, metavar="SOURCE", help="digits, cifar10:DIR or imagefolder:DIR")
    p.add_argument("--epochs", type=positive_int, help="default: the recipe's")
    p.add_argument("--batch-size", type=positive_int,
                   help="the GLOBAL batch (default: the recipe's); under torchrun split evenly over the replicas, "
                        "so it must be a multiple of their number")
    p.add_argument("--lr", type=positive_float, help="initial learning rate (default: the recipe's)")
    p.add_argument("--dropout", type=probability, help="dropout rate of the hidden dense layers (default: the network's)")
    p.add_argument("--precise-bn", type=non_negative_int, metavar="SAMPLES",
                   help="recompute BatchNorm's moving statistics over this many training samples before each "
                        "evaluation (0: off; default: the recipe's)")
    p.add_argument("--num-classes", type=positive_int, help="default: the data set's class count (must match it)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use N images of each split, every class in its share, drawn with a fixed seed "
                        "(smoke runs and tests)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="torch: DataLoader worker processes")
    p.add_argument("--sync-bn", action="store_true",
                   help="torch under torchrun, cifar: BatchNorm over the global batch (as one process), not each "
                        "replica's share")
    p.add_argument("--dist-timeout", type=positive_int, metavar="SECONDS", default=DEFAULT_TIMEOUT_S,
                   help=f"torch under torchrun: a replica that does not answer for this long ends the job with an "
                        f"error instead of a hang (default {DEFAULT_TIMEOUT_S})")
    p.add_argument("--distribute", choices=("mirrored", "multi-worker", "data-parallel"),
                   help="keras: data-parallel model.fit: mirrored (tf.distribute.MirroredStrategy, one machine), "
                        "multi-worker (MultiWorkerMirroredStrategy, TF_CONFIG), data-parallel (JAX); --batch-size "
                        "is the global batch (docs/scaling.md)")
    p.add_argument("--devices", type=positive_int, metavar="N",
                   help="with --distribute: replicas on this machine (mirrored: logical CPU devices when there are "
                        "fewer GPUs; data-parallel: JAX host devices; multi-worker: N local worker processes)")
    p.add_argument("--fault-timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="multi-worker --devices: how long the other workers may take to stop after one dies before "
                        "they are killed (default 60)")
    add_device_argument(p)
    add_precision_argument(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="the run's folder")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last epoch")
    p.add_argument("--force", action="store_true", help="replace the run in RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def plot_parser() -> ArgumentParser:
    p = ArgumentParser(prog="alexnet-train plot", description="loss and accuracy curves of runs, in one PNG")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="FIG.png")
    p.add_argument("--title", default="")
    p.add_argument("--force", action="store_true", help="overwrite FIG.png")
    p.add_argument("--json", action="store_true")
    p.add_argument("--debug", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["plot"]:
        body = lambda: _plot(plot_parser().parse_args(args_list[1:]))
        return run("alexnet-train plot", body, as_json=wants(args_list, "--json"), debug=wants(args_list, "--debug"))
    rank = _replica_rank()
    if rank:  # another replica of a torchrun job: rank 0 prints the result, every rank its own error
        with contextlib.redirect_stdout(io.StringIO()):
            return run(f"alexnet-train (rank {rank})", lambda: _train(parser().parse_args(args_list), args_list),
                       as_json=False, debug=wants(args_list, "--debug"))
    return run("alexnet-train", lambda: _train(parser().parse_args(args_list), args_list),
               as_json=wants(args_list, "--json"), debug=wants(args_list, "--debug"))


def _replica_rank() -> int:
    try:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    except ValueError:
        return 0  # alexnet_torch.distributed.setup reports the bad value


def _train(args, argv: list[str]):
    check_installed(torch=args.framework == "torch", keras=args.framework == "keras")
    _check_distribute(args)
    if args.framework == "torch" and _replica_count() > 1:
        import_frameworks(torch=True)
        from alexnet_torch import distributed

        replicas = distributed.setup(args.dist_timeout)
        try:
            return _train_run(args, replicas, argv)
        finally:
            distributed.shutdown()
    if _replica_count() > 1:
        raise UsageError("torchrun launches PyTorch replicas: use --framework torch (Keras distributes through "
                         "its own strategies), or run one process without torchrun")
    return _train_run(args, None, argv)


def _replica_count() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be a number of processes; found {os.environ['WORLD_SIZE']!r}") from None


def _train_run(args, replicas, argv: list[str]):
    """One process's training; ``replicas`` is this process's place in a torchrun job, or None.

    Whatever can refuse comes before anything is written: the settings, then the data (labels,
    image sizes), then the run folder, checked under its lock (one writer per folder); ``run.json``
    is written once the model is built and the run can start.
    """
    from alexnet_training import runs
    from alexnet_training.augment import Pipeline

    recipe, batch = _settings(args, replicas)
    train_data, val_data = _read_data(args, batch)
    train_pipe = Pipeline(train_data, recipe.augment, train=True, seed=args.seed, batch_size=batch)
    val_pipe = Pipeline(val_data, recipe.augment, train=False, seed=args.seed, batch_size=batch)
    data = args.data + (f" limit={args.limit}" if args.limit else "")
    config = runs.RunConfig(framework=args.framework, variant=args.variant, recipe=recipe.name, data=data,
                            epochs=args.epochs or recipe.epochs, batch_size=batch, seed=args.seed,
                            num_classes=len(train_data.classes),
                            options=runs.model_options(args.variant, recipe.init, args.dropout),
                            lr=recipe.lr if args.lr is None else args.lr,
                            precise_bn=recipe.precise_bn if args.precise_bn is None else args.precise_bn,
                            precision=args.precision)
    launcher = bool(args.distribute == "multi-worker" and args.devices and not os.environ.get("TF_CONFIG"))
    if args.distribute:
        import_frameworks(keras=True)  # neither TensorFlow nor JAX fixes its devices at import
        from alexnet_keras.distributed import check_backend, prepare

        if launcher:
            check_backend(args.distribute)  # refuse before any worker starts
        else:
            prepare(args.distribute, args.devices)  # before Keras starts: device counts are fixed then
    placement, device_line = _place(args, replicas, config)  # before Keras starts: --device cpu hides its GPUs
    # the chief checks and writes the folder; a multi-worker job's other workers only read it to resume
    chief = _chief(args.distribute)
    with _writer_lock(args.out, launcher or (chief and (replicas is None or replicas.main))):
        if launcher:
            runs.prepare(args.out, config, resume=args.resume, force=args.force)
            return _launch_workers(args, _worker_args(argv))
        if chief:
            stored = runs.prepare(args.out, config, resume=args.resume, force=args.force)
        else:
            stored = runs.read_config(args.out) if args.resume else None
        if device_line:
            _announce(args, config, device_line, replicas)
        _note_other_device(args, stored, config)
        return _train_folder(args, replicas, recipe, train_pipe, val_pipe, config, chief, stored, placement)


def _settings(args, replicas):
    """The recipe and the global batch, once the settings that need no data agree."""
    from alexnet_spec import get_spec
    from alexnet_training.recipes import RECIPES, get_recipe

    recipe = get_recipe(args.recipe or (args.variant if args.variant in RECIPES else "cifar"))
    spec = get_spec(args.variant)
    if recipe.augment.crop != spec.input_size:
        raise UsageError(f"recipe {recipe.name!r} crops {recipe.augment.crop}x{recipe.augment.crop} images; the "
                         f"{args.variant} network reads {spec.input_size}x{spec.input_size}. Use --recipe "
                         f"{args.variant if args.variant in RECIPES else 'cifar'} or another --variant.")
    if args.sync_bn and args.framework != "torch":
        raise UsageError("--sync-bn is for PyTorch replicas under torchrun; Keras synchronizes BatchNorm in its strategies")
    if args.sync_bn and args.variant != "cifar":
        raise UsageError(f"--sync-bn synchronizes BatchNorm, and only the cifar network has it (not {args.variant})")
    batch = args.batch_size or recipe.batch_size
    if replicas is not None:
        replicas.per_replica(batch)
    if args.devices and batch % args.devices:
        raise UsageError(f"--batch-size {batch} is the global batch and must split evenly over {args.devices} "
                         f"replicas; use a multiple of {args.devices}")
    return recipe, batch


def _read_data(args, batch: int):
    """The (train, val) data, read and checked: its labels, its class count, enough for a batch."""
    from alexnet_training.data import parse_data, subset

    train_data, val_data = parse_data(args.data)
    if args.limit:
        train_data, val_data = subset(train_data, args.limit), subset(val_data, args.limit)
    classes = len(train_data.classes)
    if args.num_classes is not None and args.num_classes != classes:
        raise ValueError(f"--num-classes {args.num_classes} does not match the data: {args.data} has {classes} "
                         f"classes ({', '.join(train_data.classes[:5])}{', ...' if classes > 5 else ''}). "
                         "Drop --num-classes or use data with that many classes.")
    if len(train_data) < batch:
        raise ValueError(f"{args.data} has {len(train_data)} training images, fewer than one batch of {batch}; "
                         "use a smaller --batch-size")
    return train_data, val_data


def _writer_lock(run_dir, writer: bool):
    """The run folder's lock (``alexnet_training.lock``), held by the one process that writes it.

    A local multi-worker launcher holds it for its workers, and names itself in their environment,
    so its chief worker writes under the launcher's lock instead of waiting on it."""
    if not writer or os.environ.get(LAUNCHER_ENV) == str(os.getppid()):
        return contextlib.nullcontext()
    from alexnet_training import lock

    return lock.hold(run_dir)


def _train_folder(args, replicas, recipe, train_pipe, val_pipe, config, chief, stored, placement):
    """Build the model, start the run (``run.json``) unless it is resumed, train, save the weights
    (``placement``: this process's device, from ``_place``)."""
    from alexnet_training import runs

    batch = config.batch_size
    import_frameworks(torch=args.framework == "torch", keras=args.framework == "keras")
    strategy = None  # Keras's engine, with --distribute
    if args.distribute:
        from alexnet_keras.distributed import check_batch, prepare_model
        from alexnet_keras.distributed import replicas as make_replicas

        strategy = make_replicas(args.distribute, None if args.distribute == "multi-worker" else args.devices)
        check_batch(batch, strategy)
        with strategy.scope():
            model = _build(args.framework, config)
        prepare_model(model, strategy)
        config.device = ", ".join(strategy.devices)
        _announce(args, config, strategy.describe())
    else:
        model = _build(args.framework, config)
    if replicas is not None:
        replicas.barrier()  # every replica has checked the folder before rank 0 writes into it
        if args.sync_bn:
            from alexnet_torch.distributed import convert_sync_batchnorm

            convert_sync_batchnorm(model)
    if stored is None and chief and (replicas is None or replicas.main):
        runs.start(args.out, config, force=args.force)
    progress = not (args.no_progress or args.json) and (replicas is None or replicas.main)
    if args.framework == "torch":
        from alexnet_torch import save_weights
        from alexnet_torch.training import train
        rows = train(model, recipe, train_pipe, val_pipe, args.out, config, resume=stored is not None,
                     workers=args.workers, progress=progress, epoch_lines=not args.json, replicas=replicas,
                     device=placement.torch_device if placement else None)
        if replicas is not None and not replicas.main:
            return EXIT_OK, {"ok": True, "rank": replicas.rank}, ""
    else:
        from alexnet_keras import save_weights
        from alexnet_keras.training import train
        rows = train(model, recipe, train_pipe, val_pipe, args.out, config, resume=stored is not None,
                     progress=progress, epoch_lines=not args.json, replicas=strategy)
        if not chief:
            return EXIT_OK, {"ok": True, "chief": False, "metrics": rows}, f"{strategy.describe()}: done"
    weights = save_weights(model, Path(args.out) / runs.FINAL_WEIGHTS, overwrite=True, sidecar=True)
    where = strategy.describe() if strategy else (f"torchrun: {replicas.world_size} replicas, {replicas.backend}"
                                                  if replicas else None)
    return EXIT_OK, *_summary(args, config, rows, weights, where)


def _summary(args, config, rows, weights, where):
    last = rows[-1] if rows else {}
    epochs = f"{len(rows)} epoch{'s' * (len(rows) != 1)}"
    text = (f"{args.framework} {args.variant} on {args.data}: {epochs}, val_top1 {last.get('val_top1', 0):.4f}, "
            f"val_top5 {last.get('val_top5', 0):.4f}; weights {weights}" + (f" ({where})" if where else ""))
    payload = {"ok": True, "config": vars(config), "metrics": rows, "weights": str(weights)}
    if where:
        payload["distribute"] = where
    return payload, text


def _check_distribute(args) -> None:
    if args.distribute and args.framework != "keras":
        raise UsageError(f"--distribute runs Keras's engines; for --framework {args.framework} see docs/scaling.md "
                         "(torchrun)")
    if args.distribute and args.device != "auto":
        raise UsageError(f"--device {args.device}: --distribute picks the devices (--devices, docs/scaling.md); "
                         "drop --device")
    if args.devices and not args.distribute:
        raise UsageError("--devices says over how many devices to --distribute; add --distribute "
                         "mirrored, multi-worker or data-parallel")


def _chief(kind) -> bool:
    """Whether this process writes the run's files: all but the non-chief workers of a multi-worker job."""
    if kind != "multi-worker" or not os.environ.get("TF_CONFIG"):
        return True
    from alexnet_keras.distributed import DistributeError, parse_tf_config

    try:
        return parse_tf_config(os.environ["TF_CONFIG"])["chief"]
    except DistributeError as err:
        raise UsageError(str(err)) from None


def _worker_args(argv: list[str]) -> list[str]:
    """A worker's arguments: the launcher's, less ``--devices N`` (its cluster is TF_CONFIG's) and
    ``--json`` (the launcher prints the one JSON object)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices=") and arg != "--json":
            out.append(arg)
    return out + (["--no-progress"] if "--json" in argv and "--no-progress" not in argv else [])


def _launch_workers(args, worker_args):
    """``--distribute multi-worker --devices N`` without TF_CONFIG: N workers here, watched."""
    from alexnet_keras.distributed import WorkerFailed, launch_local_workers
    from alexnet_training import runs

    try:
        launch_local_workers([sys.executable, "-m", "alexnet_cli.train", *worker_args], args.devices,
                             fault_timeout_s=args.fault_timeout, output=sys.stderr if args.json else None,
                             env={**os.environ, LAUNCHER_ENV: str(os.getpid())})
    except WorkerFailed as err:
        raise WorkerFailed(f"multi-worker training stopped: {err}") from None
    config = runs.read_config(args.out)
    rows = runs.read_metrics(args.out)
    where = f"tf MultiWorkerMirroredStrategy: {args.devices} local worker{'s' * (args.devices != 1)}"
    return EXIT_OK, *_summary(args, config, rows, Path(args.out) / runs.FINAL_WEIGHTS, where)


def _place(args, replicas, config):
    """This process's device (``alexnet_cli.devices``), in ``config.device``, before anything is
    written: (the placement, None where the replicas choose (torchrun, --distribute); the line that
    names it once the run starts, None where the strategy names it)."""
    from alexnet_cli.devices import check_precision, place

    if args.distribute:
        return None, None  # the strategy's devices, once it is made
    if replicas is not None:
        if args.device != "auto":
            raise UsageError(f"--device {args.device}: under torchrun each replica takes cuda:LOCAL_RANK (nccl) "
                             "or the CPU (gloo); drop --device")
        from alexnet_torch.devices import describe_device

        config.device = str(replicas.device)
        check_precision(args.precision, replicas.device.type == "cuda")
        return None, f"{describe_device(replicas.device)}, rank {replicas.rank} of {replicas.world_size}"
    where = place([args.framework], args.device)[args.framework]
    check_precision(args.precision, where.on_gpu)
    config.device = where.name
    return where, where.line


def _announce(args, config, line, replicas=None):
    """The device line, once the run can start (the main process of a data-parallel job alone),
    and fp16's refusal on CPUs."""
    from alexnet_cli.devices import Placement, announce, check_precision

    check_precision(args.precision, any(k in config.device.lower() for k in ("cuda", "gpu")))
    if replicas is None or replicas.main:
        announce([Placement(config.device, line)], as_json=args.json)


def _note_other_device(args, stored, config) -> None:
    """Resuming on another device is allowed (the checkpoint loads onto any), and said."""
    if stored is not None and stored.device not in ("", config.device):
        print(f"note: resuming {args.out} on {config.device}; its earlier epochs ran on {stored.device} "
              "(run.json keeps the device it started on)", file=sys.stderr, flush=True)


def _build(framework: str, config):
    if framework == "torch":
        import torch

        import alexnet_torch

        torch.manual_seed(config.seed)
        return alexnet_torch.build(config.variant, config.num_classes, **config.options)
    import keras

    import alexnet_keras
    from alexnet_keras.devices import precision_policy

    keras.utils.set_random_seed(config.seed)
    with precision_policy(config.precision):  # mixed precision is the policy layers are built under
        return alexnet_keras.build(config.variant, config.num_classes, **config.options)


def _plot(args):
    from alexnet_cli.plot import plot_runs

    path = plot_runs(args.runs, args.out, title=args.title, overwrite=args.force)
    return EXIT_OK, {"ok": True, "figure": str(path), "runs": args.runs}, f"wrote {path}"


if __name__ == "__main__":
    sys.exit(main())
