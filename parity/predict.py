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

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)

import numpy as np  # noqa: E402

FRAMEWORKS = ("torch", "keras")
EXIT_OK, EXIT_DIFFER, EXIT_ERROR = 0, 1, 2
RANDOM_LABEL = "SEEDED RANDOM WEIGHTS (seed {seed}): not a trained network, the class names are meaningless"


@dataclass
class Models:
    variant: str
    label: str  # what the weights are, said plainly
    models: dict = field(default_factory=dict)  # framework -> model


def load_models(frameworks, variant: str = "torchvision", weights: str = "imagenet", seed: int = 0) -> Models:
    """The model of each framework in ``frameworks``, with ``weights`` (see the module doc)."""
    from alexnet_spec.imagenet import PRETRAINED

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
            raise ValueError(f"no published ImageNet weights for the {variant!r} variant; pass --weights FILE or --weights random")
        w = published[0]
        result.label = f"{w.name} (ImageNet-1K, acc@1 {w.acc1}, acc@5 {w.acc5})"
        if "torch" in frameworks:
            import alexnet_torch

            result.models["torch"] = alexnet_torch.build(variant, weights=w.name).eval()
        if "keras" in frameworks:
            import alexnet_keras

            result.models["keras"] = alexnet_keras.build(variant, weights="imagenet")
        return result
    from parity import files

    record = files.read(weights, variant)
    result.label = f"{weights} ({record.variant})"
    result.variant = record.variant
    if "torch" in frameworks:
        result.models["torch"] = files.torch_model(record).eval()
    if "keras" in frameworks:
        result.models["keras"] = files.keras_model(record)
    return result


def preprocess(source, frameworks, variant: str) -> dict[str, np.ndarray]:
    """Each framework's own pipeline on one image: NCHW float32 for torch, NHWC for Keras."""
    out = {}
    if "torch" in frameworks:
        import alexnet_torch

        out["torch"] = alexnet_torch.load_image(source, variant).unsqueeze(0).numpy()
    if "keras" in frameworks:
        import alexnet_keras

        out["keras"] = alexnet_keras.preprocess_input(alexnet_keras.load_image(source, variant)[None])
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

        with torch.inference_mode():
            probs["torch"] = _softmax(models.models["torch"](torch.from_numpy(inputs["torch"])).numpy())
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alexnet-predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--framework", choices=("torch", "keras", "both"), default="both")
    parser.add_argument("--variant", default="torchvision")
    parser.add_argument("--weights", default="imagenet", help="imagenet, random, or a weight file")
    parser.add_argument("--seed", type=int, default=0, help="seed of --weights random")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    frameworks = FRAMEWORKS if args.framework == "both" else (args.framework,)

    def fail(message: str) -> int:
        if args.json:
            print(json.dumps({"ok": False, "error": message}))
        else:
            print(f"alexnet-predict: error: {message}", file=sys.stderr)
        return EXIT_ERROR

    try:
        from alexnet_spec import get_spec

        get_spec(args.variant)
        inputs, errors = {}, []
        for image in args.images:  # every image is checked before any model is loaded
            try:
                inputs[image] = preprocess(image, frameworks, args.variant)
            except ValueError as err:
                errors.append(str(err))
        if errors:
            return fail("\n".join(errors))
        models = load_models(frameworks, args.variant, args.weights, args.seed)
        results = {image: classify(models, x, args.top) for image, x in inputs.items()}
    except (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, PermissionError) as err:
        return fail(str(err))
    agree = all(r.get("agree", True) for r in results.values())
    if args.json:
        print(json.dumps({"ok": agree, "variant": models.variant, "weights": models.label, "results": results}, indent=1))
    else:
        print(f"AlexNet {models.variant!r}, weights: {models.label}\n")
        print("\n\n".join(format_result(image, r) for image, r in results.items()))
    return EXIT_OK if agree else EXIT_DIFFER


if __name__ == "__main__":
    sys.exit(main())
