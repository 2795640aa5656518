"""``alexnet-eval``: top-1 and top-5 accuracy of any weights file, in either framework.

    alexnet-eval --framework keras --weights runs/torch/model.safetensors --data digits --crops both

Reads the validation split of ``--data`` (digits' test images, CIFAR-10's test batch, an image
folder's ``val/``) through the recipe's test-time transform: the center crop, the paper's 10 crops
(four corners and the center, and their reflections, softmax averaged), or both. A
``.safetensors`` file names its variant, options and class count, a ``.keras`` file its variant and
options; other files need ``--variant``, and ``--option`` for build options they cannot hold
(``alexnet-parity port`` names them when it writes such a file).

Every format ``alexnet-parity port`` writes is read in both frameworks: a framework's own formats
load directly, the other framework's are read and ported in memory (``parity.files``), which needs
both frameworks installed.

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

from alexnet_cli.console import (EXIT_OK, ArgumentParser, UsageError, check_installed, positive_int,
                                 run, wants, warn_unverified)
from alexnet_cli.devices import add_device_argument
from parity.files import TORCH_FORMATS

# The formats each framework reads itself; any other is read by parity.files and ported in memory.
NATIVE_FORMATS = {"torch": TORCH_FORMATS + (".safetensors",), "keras": (".safetensors", ".keras", ".weights.h5")}


def parser() -> ArgumentParser:
    from alexnet_spec import VARIANTS
    from alexnet_training.recipes import RECIPES

    p = ArgumentParser(prog="alexnet-eval", description=__doc__.splitlines()[0])
    p.add_argument("--framework", required=True, choices=("torch", "keras"))
    p.add_argument("--weights", required=True, metavar="FILE",
                   help=".safetensors, .pt/.pth, .keras, .weights.h5 (either framework's) or Caffe's .caffemodel")
    p.add_argument("--data", required=True, metavar="SOURCE", help="digits, cifar10:DIR or imagefolder:DIR")
    p.add_argument("--variant", choices=VARIANTS, help="needed when the file does not say (all but .safetensors and .keras)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a build option the file does not hold, e.g. logits=true for a cifar network trained here and "
                        "ported to .pt or .weights.h5 (port names them); .safetensors and .keras files keep theirs")
    p.add_argument("--recipe", choices=tuple(RECIPES), help="test-time transform (default: the variant's recipe)")
    p.add_argument("--crops", choices=("center", "10crop", "both"), default="center")
    p.add_argument("--preprocessing", choices=("auto", "torchvision", "caffe"), default="auto",
                   help="auto (default): caffe for Caffe's weights (a .caffemodel, or a .safetensors ported from "
                        "one: 256x256, BGR, 0..255, mean 104/117/123, center 227 or Caffe's 10 crops), the "
                        "recipe's transform otherwise (torchvision's normalization), and with an explicit --recipe")
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_device_argument(p)
    p.add_argument("--limit", type=positive_int, metavar="N", help="only N images, every class in its share, drawn with a fixed seed")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    return run("alexnet-eval", lambda: _eval(parser().parse_args(argv)), as_json=wants(argv, "--json"),
               debug=wants(argv, "--debug"))


def describe_weights(path: str, variant: str | None, given: dict | None = None) -> tuple[str, dict, int | None]:
    """(variant, build options, class count or None) of a weights file, read without a framework
    where the file says (``.safetensors``, ``.keras``); ``given`` (``--option``) over the file's."""
    from alexnet_spec import exchange, get_spec
    from alexnet_spec.messages import require_file
    from alexnet_spec.port import num_classes_of_torch
    from alexnet_spec.tables import get_table
    from parity.files import keras_archive_config

    require_file(path)
    given, classes = dict(given or {}), None
    if str(path).endswith(".caffemodel"):  # bvlc_alexnet: read (and checked) when the model is built
        if variant not in (None, "paper"):
            raise UsageError(f"{path} is Caffe's bvlc_alexnet, the 'paper' network, not {variant!r}; leave out --variant")
        variant, options, classes = "paper", {"lrn": "caffe"}, 1000
    elif str(path).endswith(".safetensors"):
        record = exchange.load(path, variant)
        variant, options = record.variant, dict(record.options)
        classes = num_classes_of_torch(get_table(record.variant), record.state)
    elif str(path).endswith(".keras") and (found := keras_archive_config(path))[0]:
        if variant not in (None, found[0]):
            raise UsageError(f"{path} holds the {found[0]!r} AlexNet, not {variant!r}; leave out --variant")
        variant, options = found
    elif variant is None:
        raise UsageError(f"{path} does not name its variant; pass --variant (one of paper, cifar, torchvision)")
    else:
        options = {}
    allowed = get_spec(variant).portable_options
    if unknown := sorted(set(given) - set(allowed)):
        raise UsageError(f"--option {', '.join(unknown)}: the {variant!r} AlexNet takes only "
                         f"{', '.join(allowed) or 'no options'}")
    return variant, {**options, **given}, classes


def frameworks_needed(framework: str, fmt: str) -> dict[str, bool]:
    """The frameworks evaluating a ``fmt`` file in ``framework`` imports: that one for its own
    formats; else torch too (parity.files reads every file in torch's layout, checked against a
    torch model) and Keras for Keras's files."""
    foreign = fmt not in NATIVE_FORMATS[framework]
    return {"torch": framework == "torch" or foreign,
            "keras": framework == "keras" or (foreign and fmt in NATIVE_FORMATS["keras"])}


def load_model(framework: str, path: str, variant: str, num_classes: int, options: dict):
    """``framework``'s model of ``variant`` with the weights of ``path``: the framework's own
    formats load into it directly; the other framework's (and Caffe's) are read by parity.files
    and ported in memory."""
    from parity import files

    if files.format_of(path) not in NATIVE_FORMATS[framework]:
        record = files.read(path, variant, options)
        if files.num_classes(record) != num_classes:
            raise ValueError(_classes_error(path, files.num_classes(record), num_classes))
        return files.torch_model(record) if framework == "torch" else files.keras_model(record)
    if framework == "torch":
        import alexnet_torch

        return alexnet_torch.load_weights(alexnet_torch.build(variant, num_classes, **options), path)
    import alexnet_keras
    from alexnet_keras.weights import layer_weights, set_layer_weights

    model = alexnet_keras.build(variant, num_classes, **options)
    if path.endswith(".keras"):  # the archive's weights, into a model of the options asked for
        return set_layer_weights(model, layer_weights(files.load_keras_model(path)))
    return alexnet_keras.load_weights(model, path)


def _classes_error(path: str, classes: int, data_classes: int, data: str = "the data") -> str:
    return (f"{path} has {classes} classes; {data} has {data_classes}. Evaluate it on data with the classes it "
            "was trained on.")


def _eval(args):
    from alexnet_spec import get_spec
    from alexnet_training.augment import Pipeline
    from alexnet_training.data import parse_data, subset
    from alexnet_training.recipes import CAFFE_TEST, RECIPES, for_network, get_recipe
    from alexnet_cli.parity import parse_options
    from parity.files import format_of, preprocessing_for

    needs = frameworks_needed(args.framework, format_of(args.weights))
    check_installed(**needs)
    if args.recipe and args.preprocessing == "caffe":
        raise UsageError(f"--recipe {args.recipe} names the recipe's test-time transform and --preprocessing caffe "
                         "Caffe's; pass one of them")
    variant, options, classes = describe_weights(args.weights, args.variant, parse_options(args.option))
    recipe = for_network(get_recipe(args.recipe or (variant if variant in RECIPES else "cifar")),
                         get_spec(variant).input_size)
    # an explicit --recipe is the user's choice of transform; auto only decides when none is named
    preprocessing = "torchvision" if args.recipe else preprocessing_for(args.weights, args.preprocessing)
    augment = CAFFE_TEST if preprocessing == "caffe" else recipe.augment
    _, val = parse_data(args.data)
    if args.limit:
        val = subset(val, args.limit)
    if classes is not None and classes != len(val.classes):
        raise ValueError(_classes_error(args.weights, classes, len(val.classes), args.data))
    spec = get_spec(variant)
    if augment.crop != spec.input_size:
        source = "Caffe's preprocessing" if preprocessing == "caffe" else f"recipe {recipe.name!r}"
        hint = ("; Caffe's input is the paper network's (--variant paper), pass --preprocessing torchvision for "
                "others" if preprocessing == "caffe" else "")
        raise UsageError(f"{source} crops {augment.crop}; {variant} reads {spec.input_size}{hint}")
    probabilities = spec.softmax and not options.get("logits", False)
    pipeline = Pipeline(val, augment, train=False, batch_size=args.batch_size)
    from alexnet_cli.devices import place

    where = place([args.framework], args.device, also=[f for f, needed in needs.items() if needed])[args.framework]
    model = load_model(args.framework, args.weights, variant, classes or len(val.classes), options)
    warn_unverified("alexnet-eval", args.weights)
    if args.framework == "torch":
        from alexnet_torch import training

        model.to(where.torch_device)
        loader = training.data_loader(pipeline, pin_memory=where.on_gpu)
        center = lambda: training.evaluate(model, loader, probabilities=probabilities)  # noqa: E731
    else:
        from alexnet_keras import training

        center = lambda: training.evaluate(model, pipeline, probabilities=probabilities)  # noqa: E731
    result = {"ok": True, "framework": args.framework, "weights": args.weights, "variant": variant,
              "data": args.data, "images": len(val), "device": where.name,
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
    return EXIT_OK, result, "\n".join([f"device: {where.line}", head, *lines])


if __name__ == "__main__":
    sys.exit(main())
