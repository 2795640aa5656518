"""``alexnet-predict``: classify photographs in PyTorch, Keras or both, top-5 side by side.

Each framework runs its own pipeline end to end (torchvision's transforms and model; the Keras
preprocessing and model), so agreement covers preprocessing too. Exit codes: 0 done (and, with
``--framework both``, the top-5 agree), 1 the frameworks disagree, 2 bad input (an unreadable
image, a refused mode or size, a missing or broken weight file), with a message that says what to do.

``--weights``: ``imagenet`` (torchvision's IMAGENET1K_V1: torchvision's checkpoint for PyTorch,
the converted file in the Keras cache for Keras), a weight file, or ``random`` (seeded random
weights, ported to Keras; needs torch; the class names are then meaningless).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from alexnet_cli.console import (EXIT_DIFFER, EXIT_OK, ArgumentParser, check_installed, positive_int, run, wants,
                                 warn_unverified)
from alexnet_cli.devices import add_device_argument

FRAMEWORKS = ("torch", "keras")
RANDOM_LABEL = "SEEDED RANDOM WEIGHTS (seed {seed}): not a trained network, the class names are meaningless"


@dataclass
class Models:
    variant: str
    label: str  # what the weights are, said plainly
    models: dict = field(default_factory=dict)  # framework -> model


def load_models(frameworks, variant: str = "torchvision", weights: str = "imagenet", seed: int = 0) -> Models:
    """The model of each framework in ``frameworks``, with ``weights`` (see the module doc)."""
    from alexnet_spec.imagenet import PRETRAINED
    from alexnet_spec.messages import first_line

    frameworks = tuple(frameworks)
    result = Models(variant, "")
    if weights == "random":
        import alexnet_torch
        from parity.randomize import randomize_torch

        module = randomize_torch(alexnet_torch.build(variant), seed).eval()
        result.label = RANDOM_LABEL.format(seed=seed)
        if "torch" in frameworks:
            result.models["torch"] = module
        if "keras" in frameworks:
            from parity.models import torch_to_keras

            result.models["keras"] = torch_to_keras(module)
        return result
    if weights == "imagenet":
        published = [w for w in PRETRAINED.values() if w.variant == variant]
        if not published:
            hint = (" The paper network's ImageNet weights are Caffe's bvlc_alexnet: download bvlc_alexnet.caffemodel "
                    "(BVLC model zoo), run `alexnet-parity port bvlc_alexnet.caffemodel paper-imagenet.safetensors`, "
                    "then pass --weights paper-imagenet.safetensors." if variant == "paper" else "")
            raise ValueError(f"no published ImageNet weights for the {variant!r} variant; pass --weights FILE or "
                             f"--weights random.{hint}")
        w = published[0]
        result.label = f"{w.name} (ImageNet-1K, acc@1 {w.acc1}, acc@5 {w.acc5})"
        if "torch" in frameworks:
            import alexnet_torch

            try:
                result.models["torch"] = alexnet_torch.build(variant, weights=w.name).eval()
            except OSError as err:  # offline, a proxy, a full disk: urllib's errors are OSErrors
                raise ValueError(
                    f"could not get {w.name} ({w.url}) through torchvision: {first_line(err)}. It is "
                    f"downloaded once into torch's cache; with no network, copy {w.file_name} into "
                    "$TORCH_HOME/hub/checkpoints/, or pass --weights FILE or --weights random."
                ) from err
        if "keras" in frameworks:
            import alexnet_keras

            result.models["keras"] = alexnet_keras.build(variant, weights="imagenet")
        return result
    from parity import files

    record = files.read(weights, variant)
    check_variant(record.variant)
    result.label = f"{weights} ({record.variant})"
    result.variant = record.variant
    if "torch" in frameworks:
        result.models["torch"] = files.torch_model(record).eval()
    if "keras" in frameworks:
        result.models["keras"] = files.keras_model(record)
    return result


def preprocess(source, frameworks, variant: str, preprocessing: str = "torchvision") -> dict[str, np.ndarray]:
    """Each framework's own pipeline on one image: NCHW float32 for torch, NHWC for Keras.
    ``preprocessing="caffe"``: Caffe's (BGR, 0..255, mean subtracted), for bvlc_alexnet's weights."""
    out = {}
    if "torch" in frameworks:
        import alexnet_torch

        out["torch"] = alexnet_torch.load_image(source, variant, preprocessing).unsqueeze(0).numpy()
    if "keras" in frameworks:
        import alexnet_keras

        image = alexnet_keras.load_image(source, variant, preprocessing)[None]
        out["keras"] = alexnet_keras.preprocess_input(image, mode=preprocessing)
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def classify(models: Models, inputs: dict[str, np.ndarray], top: int = 5) -> dict:
    """Probabilities and top-``top`` of each framework, and how far they are apart."""
    from alexnet_spec.imagenet import decode_predictions

    probs = {}
    if "torch" in models.models:
        import torch

        model = models.models["torch"]
        with torch.inference_mode():
            x = torch.from_numpy(inputs["torch"]).to(next(model.parameters()).device)
            probs["torch"] = _softmax(model(x).cpu().numpy())
    if "keras" in models.models:
        import keras

        probs["keras"] = _softmax(keras.ops.convert_to_numpy(models.models["keras"](inputs["keras"], training=False)))
    result = {"top": {f: decode_predictions(p, top)[0] for f, p in probs.items()}}
    if len(probs) == 2:
        result["agree"] = [i for i, *_ in result["top"]["torch"]] == [i for i, *_ in result["top"]["keras"]]
        result["max_prob_diff"] = float(np.max(np.abs(probs["torch"] - probs["keras"])))
        result["max_input_diff"] = float(np.max(np.abs(inputs["torch"] - inputs["keras"].transpose(0, 3, 1, 2))))
    return result


def format_result(name: str, result: dict) -> str:
    frameworks = list(result["top"])
    rows = [[f"{i} {label}, {100 * p:.2f}%" for i, label, p in result["top"][f]] for f in frameworks]
    width = max(len(cell) for col in rows for cell in col + [frameworks[0]]) + 2
    lines = [f"{name}", "  rank  " + "".join(f.ljust(width) for f in frameworks).rstrip()]
    for r, cells in enumerate(zip(*rows), start=1):
        lines.append(f"  {r:<4}  " + "".join(c.ljust(width) for c in cells).rstrip())
    if "agree" in result:
        lines.append(
            f"  top-{len(rows[0])} agree: {'yes' if result['agree'] else 'NO'}; max |p_torch - p_keras| "
            f"{result['max_prob_diff']:.1e}; preprocessed inputs differ by at most {result['max_input_diff']:.1e}"
        )
    return "\n".join(lines)


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="alexnet-predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="photographs to classify (JPEG, PNG, ...)")
    parser.add_argument("--framework", choices=("torch", "keras", "both"), default="both",
                        help="which framework classifies (default both: exit 1 if their top-k differ)")
    parser.add_argument("--variant", default="torchvision",
                        help="an ImageNet variant: torchvision (default) or paper (cifar has no ImageNet classes)")
    parser.add_argument("--weights", default="imagenet", help="imagenet, random, or a weight file")
    parser.add_argument("--preprocessing", choices=("auto", "torchvision", "caffe"), default="auto",
                        help="auto (default): caffe for Caffe's weights (a .caffemodel, or a .safetensors ported from one: "
                             "BGR, 0..255, mean 104/117/123, 256x256 then center 227), torchvision's otherwise")
    parser.add_argument("--seed", type=int, default=0, help="seed of --weights random")
    parser.add_argument("--top", type=positive_int, default=5, help="how many classes to show (default 5)")
    add_device_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of the table")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    def body():
        args = parser().parse_args(argv)
        frameworks = FRAMEWORKS if args.framework == "both" else (args.framework,)
        check_variant(args.variant)
        # random weights are made in torch, and a weight file is read through parity.files (torch's layout)
        torch_reads = args.weights != "imagenet"
        check_installed(torch="torch" in frameworks or torch_reads, keras="keras" in frameworks)
        from alexnet_cli.devices import place

        where = place(frameworks, args.device, also=["torch"] if torch_reads else [])
        from parity.files import preprocessing_for

        preprocessing = preprocessing_for(args.weights, args.preprocessing)  # read once, not per image
        inputs, errors = {}, []
        for image in args.images:  # every image is checked before any model is loaded
            try:
                inputs[image] = preprocess(image, frameworks, args.variant, preprocessing)
            except ValueError as err:
                errors.append(str(err))
        if errors:
            raise ValueError("\n".join(errors))
        models = load_models(frameworks, args.variant, args.weights, args.seed)
        if args.weights not in ("imagenet", "random"):
            warn_unverified("alexnet-predict", args.weights)
        if "torch" in models.models:
            models.models["torch"].to(where["torch"].torch_device)
        results = {image: classify(models, x, args.top) for image, x in inputs.items()}
        agree = all(r.get("agree", True) for r in results.values())
        payload = {"ok": agree, "variant": models.variant, "weights": models.label, "results": results,
                   "device": {f: p.name for f, p in where.items()}}
        text = f"device: {'; '.join(p.line for p in where.values())}\n" \
               f"AlexNet {models.variant!r}, weights: {models.label}\n\n" + "\n\n".join(
            format_result(image, r) for image, r in results.items())
        return (EXIT_OK if agree else EXIT_DIFFER), payload, text

    return run("alexnet-predict", body, as_json=wants(argv, "--json"), debug=wants(argv, "--debug"))


def check_variant(variant: str) -> None:
    """Refuse, before anything loads, a variant whose outputs are not ImageNet's 1000 classes."""
    from alexnet_spec import get_spec

    spec = get_spec(variant)
    if spec.num_classes != 1000:
        raise ValueError(
            f"alexnet-predict names ImageNet's 1000 classes; the {variant!r} variant has {spec.num_classes} "
            "outputs (it is trained on CIFAR-10 or your own data). Use --variant torchvision or paper, or "
            "run the model yourself (alexnet_torch.build / alexnet_keras.build)."
        )


if __name__ == "__main__":
    sys.exit(main())
