"""``alexnet-train``: train AlexNet in PyTorch or Keras from one recipe, on the same batches.

    alexnet-train --framework torch --variant cifar --recipe cifar --data digits --epochs 10 --out runs/torch
    alexnet-train plot runs/torch runs/keras --out curves.png
    alexnet-train init --variant cifar --seed 0 --out init.safetensors   (then --init init.safetensors, either framework)
    alexnet-train --framework keras --variant torchvision --weights imagenet --recipe finetune --freeze features ...
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
    p.add_argument("--num-classes", type=positive_int,
                   help="default: the data set's class count (must match it); when it differs from the --init file's, "
                        "that file's last layer is replaced by a new one, seeded by --seed")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--init", metavar="FILE",
                       help="start from these weights of --variant's network, from either framework: .pt, .pth, "
                            ".safetensors, .keras, .weights.h5 (alexnet-train init writes one)")
    start.add_argument("--weights", choices=("imagenet",),
                       help="start from published weights: imagenet is torchvision's IMAGENET1K_V1 (--variant "
                            "torchvision), downloaded once into torch's cache and hash-checked")
    p.add_argument("--freeze", choices=("features",),
                   help="train only the classifier: the convolution layers, and their BatchNorm statistics, stay as "
                        "they start")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use N images of each split, every class in its share, drawn with a fixed seed "
                        "(smoke runs and tests)")
    p.add_argument("--workers", type=non_negative_int, default=0,
                   help="processes that build the batches (default 0: the main process), in both frameworks: "
                        "torch DataLoader workers, Keras PyDataset workers; the batches do not depend on it")
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


def init_parser() -> ArgumentParser:
    from alexnet_spec import VARIANTS

    p = ArgumentParser(prog="alexnet-train init",
                       description="write one initial checkpoint (.safetensors, with its .sha256) that --init gives "
                                   "to either framework: the variant's initialization, seeded, built by PyTorch")
    p.add_argument("--variant", required=True, choices=VARIANTS)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--num-classes", type=positive_int, help="default: the variant's (cifar 10, the others 1000)")
    p.add_argument("--out", required=True, metavar="FILE.safetensors")
    p.add_argument("--force", action="store_true", help="overwrite FILE")
    p.add_argument("--json", action="store_true")
    p.add_argument("--debug", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["plot"]:
        body = lambda: _plot(plot_parser().parse_args(args_list[1:]))
        return run("alexnet-train plot", body, as_json=wants(args_list, "--json"), debug=wants(args_list, "--debug"))
    if args_list[:1] == ["init"]:
        body = lambda: _write_init(init_parser().parse_args(args_list[1:]))
        return run("alexnet-train init", body, as_json=wants(args_list, "--json"), debug=wants(args_list, "--debug"))
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
    # the start's file is read (torch first) before the device is placed: Keras starts after it
    config, start = _start(args, config)
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
        return _train_folder(args, replicas, recipe, train_pipe, val_pipe, config, chief, stored, placement, start)


def _settings(args, replicas):
    """The recipe and the global batch, once the settings that need no data agree."""
    from alexnet_spec import get_spec
    from alexnet_training.recipes import for_network, get_recipe

    spec = get_spec(args.variant)
    recipe = for_network(get_recipe(args.recipe or _own_recipe(args.variant)), spec.input_size)
    if recipe.augment.crop != spec.input_size:
        raise UsageError(f"recipe {recipe.name!r} crops {recipe.augment.crop}x{recipe.augment.crop} images; the "
                         f"{args.variant} network reads {spec.input_size}x{spec.input_size}. Use --recipe "
                         f"{_own_recipe(args.variant)}, --recipe finetune or another --variant.")
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


def _train_folder(args, replicas, recipe, train_pipe, val_pipe, config, chief, stored, placement, start):
    """Build the model, start the run (``run.json``) unless it is resumed, train, save the weights
    (``placement``: this process's device, from ``_place``; ``start``: the weights to start from,
    from ``_start``)."""
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
        from alexnet_cli.devices import check_precision

        # _place leaves a strategy's devices to it: fp16's refusal on CPUs is checked once they are known
        check_precision(args.precision, any(k in config.device.lower() for k in ("cuda", "gpu")))
        _announce(args, config, strategy.describe())
    else:
        model = _build(args.framework, config)
    _start_weights(model, start, config, resume=stored is not None)
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
                     workers=args.workers, progress=progress, epoch_lines=not args.json, replicas=strategy)
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
    """The device line, once the run can start (the main process of a data-parallel job alone)."""
    from alexnet_cli.devices import Placement, announce

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


def _own_recipe(variant: str) -> str:
    """The recipe a run of ``variant`` takes when --recipe is not given: its own, else cifar's."""
    from alexnet_training.recipes import RECIPES

    return variant if variant in RECIPES else "cifar"


def _start(args, config):
    """Where the run starts: ``config`` with ``--init``/``--weights`` recorded (the file, its sha256,
    the build options it needs, ``--freeze``), and the weights to load (an exchange record in
    PyTorch's layout, its head replaced for the run's classes), or None for the framework's own
    seeded initialization. Every check is done here, before anything is written."""
    from dataclasses import replace

    from alexnet_spec import checksum
    from alexnet_training.finetune import new_head

    if args.freeze and args.sync_bn:
        raise UsageError("--freeze features keeps the frozen BatchNorm layers' statistics, and --sync-bn would "
                         "replace those layers with ones that update them: leave out one of the two")
    config = replace(config, freeze=args.freeze or "")
    if not (args.init or args.weights):
        return config, None
    path, digest, label = _start_file(args)
    from parity import files

    record = files.read(path)  # checks every weight, and the .sha256 beside the file when there is one
    if record.variant != config.variant:
        raise ValueError(f"{path} holds the {record.variant} network; this run trains {config.variant}. Pass "
                         f"--variant {record.variant}, or a file of the {config.variant} network.")
    if record.preprocessing == "caffe":
        raise ValueError(f"{path} holds Caffe's weights, which read Caffe's input (BGR, 0..255, mean subtracted); "
                         "alexnet-train feeds torchvision's normalization, so the network would start on inputs it "
                         "was not trained for. Start from a file trained with alexnet-train, or --variant "
                         "torchvision --weights imagenet.")
    classes = files.num_classes(record)
    if classes != config.num_classes:
        if args.num_classes is None:
            raise ValueError(f"{path} has {classes} classes and {args.data} has {config.num_classes}. Pass "
                             f"--num-classes {config.num_classes} to replace the file's last layer with a new one "
                             f"(seeded by --seed), or use data with {classes} classes.")
        record = new_head(record, config.num_classes, config.seed)
    # the file's build options that change what the network computes (paper's LRN); whether the
    # network ends in logits is the run's choice (the loss takes them)
    options = {**config.options, **{k: v for k, v in record.options.items() if k != "logits"}}
    return replace(config, init=label, init_sha256=digest or checksum.sha256(path), options=options), record


def _start_file(args) -> tuple[str, str | None, str]:
    """The file ``--init``/``--weights`` names: (path, its sha256 when already computed, what
    run.json calls it); the frameworks its format needs are imported first."""
    from parity.files import format_of

    if args.weights:
        from alexnet_spec.imagenet import IMAGENET1K_V1

        if args.variant != IMAGENET1K_V1.variant:
            hint = (" The paper network's ImageNet weights are Caffe's bvlc_alexnet, which reads Caffe's input: "
                    "alexnet-train does not fine-tune from them." if args.variant == "paper" else "")
            raise UsageError(f"--weights imagenet is torchvision's {IMAGENET1K_V1.name}, the "
                             f"{IMAGENET1K_V1.variant} network; this run trains {args.variant}. Pass --variant "
                             f"{IMAGENET1K_V1.variant}, or --init FILE.{hint}")
        import_frameworks(torch=True)
        from alexnet_torch.torchvision import pretrained_file

        path, digest = pretrained_file(IMAGENET1K_V1.name, progress=not (args.no_progress or args.json))
        return str(path), digest, f"imagenet:{IMAGENET1K_V1.name}"
    keras_file = format_of(args.init) in (".keras", ".weights.h5")
    if keras_file and args.distribute:
        raise UsageError(f"reading {args.init} starts Keras before --distribute can set its devices; convert it "
                         f"first (alexnet-parity port {args.init} init.safetensors) and pass --init "
                         "init.safetensors")
    import_frameworks(torch=True, keras=keras_file)
    return args.init, None, args.init


def _start_weights(model, start, config, *, resume: bool) -> None:
    """Load the start's weights into the built ``model`` (not when resuming: the checkpoint holds
    the run's own) and freeze the part ``config.freeze`` names, before the optimizer is made."""
    from alexnet_training.finetune import frozen_entries
    from parity import files

    frozen = frozen_entries(config.variant, config.freeze) if config.freeze else ()
    if config.framework == "torch":
        from alexnet_torch.training import freeze

        if start is not None and not resume:
            files.load_torch(model, start)
        freeze(model, [e.torch for e in frozen])
    else:
        from alexnet_keras.training import freeze

        if start is not None and not resume:
            files.load_keras(model, start)
        freeze(model, [e.keras for e in frozen])


def _write_init(args):
    """``alexnet-train init``: the variant's initialization with ``--seed``, written once so that both
    frameworks start from the same weights. PyTorch builds it: its seeded CPU generator gives the
    same numbers on every machine, whereas Keras's initializers draw differently on each backend
    (TensorFlow, JAX) for one seed; and it is the start a PyTorch run with that seed takes."""
    import torch

    from alexnet_spec import checksum, get_spec
    from alexnet_training import runs
    from alexnet_training.recipes import get_recipe

    if not args.out.endswith(".safetensors"):
        raise UsageError(f"alexnet-train init writes .safetensors (PyTorch's layout, which both frameworks read); "
                         f"found {args.out}. Name the file FILE.safetensors.")
    if Path(args.out).exists() and not args.force:
        raise FileExistsError(f"{args.out} already exists; refusing to overwrite it. Pass --force to replace it, "
                              "or choose another --out.")
    import_frameworks(torch=True)
    import alexnet_torch

    recipe = get_recipe(_own_recipe(args.variant))  # what a run of the variant starts from by default
    classes = args.num_classes or get_spec(args.variant).num_classes
    torch.manual_seed(args.seed)  # as _build seeds a PyTorch run
    model = alexnet_torch.build(args.variant, classes, **runs.model_options(args.variant, recipe.init))
    path = alexnet_torch.save_weights(model, args.out, overwrite=args.force, sidecar=True)
    digest = checksum.verify(path)
    payload = {"ok": True, "init": str(path), "sha256": digest, "variant": args.variant, "num_classes": classes,
               "seed": args.seed, "built_by": "torch"}
    text = (f"wrote {path} ({args.variant}, {classes} classes, PyTorch's initialization, seed {args.seed}; sha256 "
            f"{digest}). Start either framework from it: alexnet-train --framework torch|keras --variant "
            f"{args.variant} --init {path} ...")
    return EXIT_OK, payload, text


def _plot(args):
    from alexnet_cli.plot import plot_runs

    path = plot_runs(args.runs, args.out, title=args.title, overwrite=args.force)
    return EXIT_OK, {"ok": True, "figure": str(path), "runs": args.runs}, f"wrote {path}"


if __name__ == "__main__":
    sys.exit(main())
