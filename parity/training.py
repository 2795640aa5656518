"""``alexnet-train``: train AlexNet in PyTorch or Keras from one recipe, on the same batches.

    alexnet-train --framework torch --variant cifar --recipe cifar --data digits --epochs 10 --out runs/torch
    alexnet-train plot runs/torch runs/keras --out curves.png

The run folder holds ``run.json``, ``metrics.csv``, a checkpoint of the last epoch and, at the end,
``model.safetensors`` (readable by ``alexnet-parity port/check``). An existing run is never
overwritten without ``--resume`` (continue it) or ``--force`` (replace it). Bad input (a missing
or empty data folder, a wrong layout, a corrupt image, a class count the model cannot take, a
resume with another run's settings) is one line on stderr, exit 2, and nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.console import EXIT_OK, ArgumentParser, UsageError, import_frameworks, positive_int, run, wants

FRAMEWORKS = ("torch", "keras")


def parser() -> ArgumentParser:
    from alexnet_spec import VARIANTS
    from alexnet_spec.recipes import RECIPES

    p = ArgumentParser(prog="alexnet-train", description=__doc__.splitlines()[0],
                       epilog="alexnet-train plot RUN_DIR... --out FIG.png draws the curves of runs")
    p.add_argument("--framework", required=True, choices=FRAMEWORKS)
    p.add_argument("--variant", required=True, choices=VARIANTS)
    p.add_argument("--recipe", choices=tuple(RECIPES), help="default: the variant's own (cifar for cifar, ...)")
    p.add_argument("--data", required=True, metavar="SOURCE", help="digits, cifar10:DIR or imagefolder:DIR")
    p.add_argument("--epochs", type=positive_int, help="default: the recipe's")
    p.add_argument("--batch-size", type=positive_int, help="default: the recipe's")
    p.add_argument("--lr", type=float, help="initial learning rate (default: the recipe's)")
    p.add_argument("--dropout", type=float, help="dropout rate of the hidden dense layers (default: the network's)")
    p.add_argument("--precise-bn", type=int, metavar="SAMPLES",
                   help="recompute BatchNorm's moving statistics over this many training samples before each "
                        "evaluation (0: off; default: the recipe's)")
    p.add_argument("--num-classes", type=positive_int, help="default: the data set's class count (must match it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use N images of each split, every class in its share, drawn with a fixed seed "
                        "(smoke runs and tests)")
    p.add_argument("--workers", type=int, default=0, help="torch: DataLoader worker processes")
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
        body = lambda: _plot(plot_parser().parse_args(args_list[1:]))  # noqa: E731
        return run("alexnet-train plot", body, as_json=wants(args_list, "--json"), debug=wants(args_list, "--debug"))
    return run("alexnet-train", lambda: _train(parser().parse_args(args_list)),
               as_json=wants(args_list, "--json"), debug=wants(args_list, "--debug"))


def _train(args):
    from alexnet_spec import get_spec, runs
    from alexnet_spec.augment import Pipeline
    from alexnet_spec.data import parse_data, subset
    from alexnet_spec.recipes import RECIPES, get_recipe

    recipe = get_recipe(args.recipe or (args.variant if args.variant in RECIPES else "cifar"))
    spec = get_spec(args.variant)
    if recipe.augment.crop != spec.input_size:
        raise UsageError(f"recipe {recipe.name!r} crops {recipe.augment.crop}x{recipe.augment.crop} images; the "
                         f"{args.variant} network reads {spec.input_size}x{spec.input_size}. Use --recipe "
                         f"{args.variant if args.variant in RECIPES else 'cifar'} or another --variant.")
    train_data, val_data = parse_data(args.data)
    if args.limit:
        train_data, val_data = subset(train_data, args.limit), subset(val_data, args.limit)
    classes = len(train_data.classes)
    if args.num_classes is not None and args.num_classes != classes:
        raise ValueError(f"--num-classes {args.num_classes} does not match the data: {args.data} has {classes} "
                         f"classes ({', '.join(train_data.classes[:5])}{', ...' if classes > 5 else ''}). "
                         "Drop --num-classes or use data with that many classes.")
    if args.precise_bn is not None and args.precise_bn < 0:
        raise UsageError(f"--precise-bn takes a number of training samples, 0 for off; found {args.precise_bn}")
    batch = args.batch_size or recipe.batch_size
    if len(train_data) < batch:
        raise ValueError(f"{args.data} has {len(train_data)} training images, fewer than one batch of {batch}; "
                         "use a smaller --batch-size")
    data = args.data + (f" limit={args.limit}" if args.limit else "")
    config = runs.RunConfig(framework=args.framework, variant=args.variant, recipe=recipe.name, data=data,
                            epochs=args.epochs or recipe.epochs, batch_size=batch, seed=args.seed,
                            num_classes=classes, options=runs.model_options(args.variant, recipe.init, args.dropout),
                            lr=recipe.lr if args.lr is None else args.lr,
                            precise_bn=recipe.precise_bn if args.precise_bn is None else args.precise_bn)
    stored = runs.prepare(args.out, config, resume=args.resume, force=args.force)
    train_pipe = Pipeline(train_data, recipe.augment, train=True, seed=args.seed, batch_size=batch)
    val_pipe = Pipeline(val_data, recipe.augment, train=False, seed=args.seed, batch_size=batch)
    import_frameworks(torch=args.framework == "torch", keras=args.framework == "keras")
    model = _build(args.framework, config)
    if stored is None:
        runs.start(args.out, config, force=args.force)
    progress = not (args.no_progress or args.json)
    if args.framework == "torch":
        from alexnet_torch import save_weights
        from alexnet_torch.training import train
        rows = train(model, recipe, train_pipe, val_pipe, args.out, config, resume=stored is not None,
                     workers=args.workers, progress=progress)
    else:
        from alexnet_keras import save_weights
        from alexnet_keras.training import train
        rows = train(model, recipe, train_pipe, val_pipe, args.out, config, resume=stored is not None,
                     progress=progress)
    weights = save_weights(model, Path(args.out) / runs.FINAL_WEIGHTS, overwrite=True, sidecar=True)
    last = rows[-1] if rows else {}
    text = (f"{args.framework} {args.variant} on {args.data}: {len(rows)} epochs, val_top1 {last.get('val_top1', 0):.4f}, "
            f"val_top5 {last.get('val_top5', 0):.4f}; weights {weights}")
    return EXIT_OK, {"ok": True, "config": vars(config), "metrics": rows, "weights": str(weights)}, text


def _build(framework: str, config):
    if framework == "torch":
        import torch

        import alexnet_torch

        torch.manual_seed(config.seed)
        return alexnet_torch.build(config.variant, config.num_classes, **config.options)
    import keras

    import alexnet_keras

    keras.utils.set_random_seed(config.seed)
    return alexnet_keras.build(config.variant, config.num_classes, **config.options)


def _plot(args):
    from parity.plots import plot_runs

    path = plot_runs(args.runs, args.out, title=args.title, overwrite=args.force)
    return EXIT_OK, {"ok": True, "figure": str(path), "runs": args.runs}, f"wrote {path}"


if __name__ == "__main__":
    sys.exit(main())
