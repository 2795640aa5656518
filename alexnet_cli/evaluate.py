"""``alexnet-eval``: top-1 and top-5 accuracy of any weights file, in either framework.

    alexnet-eval --framework keras --weights runs/torch/model.safetensors --data digits --crops both

Reads the validation split of ``--data`` (digits' test images, CIFAR-10's test batch, an image
folder's ``val/``) through the recipe's test-time transform: the center crop, the paper's 10 crops
(four corners and the center, and their reflections, softmax averaged), or both. A
``.safetensors`` file names its variant, options and class count; other files need ``--variant``.

Caffe's weights (a ``.caffemodel``, or a ``.safetensors`` ported from one) read Caffe's input
instead (``--preprocessing auto``, the default; ``caffe`` asks for it with any file): 256x256 with
the aspect ratio not kept, BGR, 0..255, mean 104/117/123 subtracted, then the center 227 or the 10
crops of Caffe's ``oversample`` (``alexnet_training.recipes.CAFFE_TEST``). Evaluating ImageNet's
1000 classes needs an image folder with the 1000 class folders, whose sorted names (the wnids,
n01440764 ...) give the class indices the weights were trained with.

    alexnet-eval --framework torch --weights paper-imagenet.safetensors --data imagefolder:/data/imagenet --crops both
"""

from __future__ import annotations

import sys

from alexnet_cli.console import EXIT_OK, ArgumentParser, UsageError, import_frameworks, positive_int, run, wants


def parser() -> ArgumentParser:
    from alexnet_spec import VARIANTS
    from alexnet_training.recipes import RECIPES

    p = ArgumentParser(prog="alexnet-eval", description=__doc__.splitlines()[0])
    p.add_argument("--framework", required=True, choices=("torch", "keras"))
    p.add_argument("--weights", required=True, metavar="FILE", help=".safetensors, .pt/.pth, .keras or .weights.h5")
    p.add_argument("--data", required=True, metavar="SOURCE", help="digits, cifar10:DIR or imagefolder:DIR")
    p.add_argument("--variant", choices=VARIANTS, help="needed when the file does not say (all but .safetensors)")
    p.add_argument("--recipe", choices=tuple(RECIPES), help="test-time transform (default: the variant's recipe)")
    p.add_argument("--crops", choices=("center", "10crop", "both"), default="center")
    p.add_argument("--preprocessing", choices=("auto", "torchvision", "caffe"), default="auto",
                   help="auto (default): caffe for Caffe's weights (a .caffemodel, or a .safetensors ported from "
                        "one: 256x256, BGR, 0..255, mean 104/117/123, center 227 or Caffe's 10 crops), the "
                        "recipe's transform otherwise (torchvision's normalization), and with an explicit --recipe")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--limit", type=positive_int, metavar="N", help="only N images, every class in its share, drawn with a fixed seed")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    return run("alexnet-eval", lambda: _eval(parser().parse_args(argv)), as_json=wants(argv, "--json"),
               debug=wants(argv, "--debug"))


def describe_weights(path: str, variant: str | None) -> tuple[str, dict, int | None]:
    """(variant, build options, class count or None) of a weights file, read without a framework
    where the file says (``.safetensors``)."""
    from alexnet_spec import exchange
    from alexnet_spec.messages import require_file
    from alexnet_spec.port import num_classes_of_torch
    from alexnet_spec.tables import get_table

    require_file(path)
    if str(path).endswith(".caffemodel"):  # bvlc_alexnet: read (and checked) when the model is built
        if variant not in (None, "paper"):
            raise UsageError(f"{path} is Caffe's bvlc_alexnet, the 'paper' network, not {variant!r}; leave out --variant")
        return "paper", {"lrn": "caffe"}, 1000
    if str(path).endswith(".safetensors"):
        record = exchange.load(path, variant)
        return record.variant, dict(record.options), num_classes_of_torch(get_table(record.variant), record.state)
    if variant is None:
        raise UsageError(f"{path} does not name its variant; pass --variant (one of paper, cifar, torchvision)")
    return variant, {}, None


def _eval(args):
    from alexnet_spec import get_spec
    from alexnet_training.augment import Pipeline
    from alexnet_training.data import parse_data, subset
    from alexnet_training.recipes import CAFFE_TEST, RECIPES, for_network, get_recipe
    from parity import files
    from parity.files import preprocessing_for

    if args.recipe and args.preprocessing == "caffe":
        raise UsageError(f"--recipe {args.recipe} names the recipe's test-time transform and --preprocessing caffe "
                         "Caffe's; pass one of them")
    variant, options, classes = describe_weights(args.weights, args.variant)
    recipe = for_network(get_recipe(args.recipe or (variant if variant in RECIPES else "cifar")),
                         get_spec(variant).input_size)
    # an explicit --recipe is the user's choice of transform; auto only decides when none is named
    preprocessing = "torchvision" if args.recipe else preprocessing_for(args.weights, args.preprocessing)
    augment = CAFFE_TEST if preprocessing == "caffe" else recipe.augment
    _, val = parse_data(args.data)
    if args.limit:
        val = subset(val, args.limit)
    if classes is not None and classes != len(val.classes):
        raise ValueError(f"{args.weights} has {classes} classes; {args.data} has {len(val.classes)}. Evaluate it on "
                         "data with the classes it was trained on.")
    spec = get_spec(variant)
    if augment.crop != spec.input_size:
        source = "Caffe's preprocessing" if preprocessing == "caffe" else f"recipe {recipe.name!r}"
        hint = ("; Caffe's input is the paper network's (--variant paper), pass --preprocessing torchvision for "
                "others" if preprocessing == "caffe" else "")
        raise UsageError(f"{source} crops {augment.crop}; {variant} reads {spec.input_size}{hint}")
    probabilities = spec.softmax and not options.get("logits", False)
    pipeline = Pipeline(val, augment, train=False, batch_size=args.batch_size)
    import_frameworks(torch=args.framework == "torch", keras=args.framework == "keras")
    num_classes = classes or len(val.classes)
    caffe_file = args.weights.endswith(".caffemodel")
    if args.framework == "torch":
        import alexnet_torch
        from alexnet_torch import training

        if caffe_file:
            model = files.torch_model(files.read(args.weights)).eval()
        else:
            model = alexnet_torch.build(variant, num_classes, **options)
            alexnet_torch.load_weights(model, args.weights)
        center = lambda: training.evaluate(model, training.data_loader(pipeline), probabilities=probabilities)  # noqa: E731
    else:
        import alexnet_keras
        from alexnet_keras import training

        if caffe_file:
            model = files.keras_model(files.read(args.weights))
        else:
            model = alexnet_keras.build(variant, num_classes, **options)
            alexnet_keras.load_weights(model, args.weights)
        center = lambda: training.evaluate(model, pipeline, probabilities=probabilities)  # noqa: E731
    result = {"ok": True, "framework": args.framework, "weights": args.weights, "variant": variant,
              "data": args.data, "images": len(val),
              "preprocessing": "caffe" if preprocessing == "caffe" else f"recipe {recipe.name}"}
    lines = []
    if args.crops in ("center", "both"):
        loss, top1, top5 = center()
        result["center"] = {"loss": loss, "top1": top1, "top5": top5}
        lines.append(f"center crop: top-1 {100 * top1:.2f}%, top-5 {100 * top5:.2f}% (loss {loss:.4f})")
    if args.crops in ("10crop", "both"):
        top1, top5 = training.evaluate_ten_crop(model, pipeline, probabilities=probabilities)
        result["10crop"] = {"top1": top1, "top5": top5}
        lines.append(f"10 crops:    top-1 {100 * top1:.2f}%, top-5 {100 * top5:.2f}%")
    how = "Caffe's preprocessing" if preprocessing == "caffe" else f"recipe {recipe.name!r}"
    head = f"{args.framework} {variant} {args.weights} on {args.data} ({len(val)} images, {how}):"
    return EXIT_OK, result, "\n".join([head, *lines])


if __name__ == "__main__":
    sys.exit(main())
