"""``make demo``'s second half: one real photograph classified in PyTorch and Keras, end to end.

The photograph is scikit-image's ``chelsea`` (a cat; scikit-image's sample data, public domain
per its README). The weights are torchvision's ImageNet weights when the converted file is in the
Keras cache; otherwise seeded random weights, labelled as such, with the command that makes the
pretrained run possible.
"""

from __future__ import annotations

import os
import sys


def chelsea():
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.chelsea())


def choose_weights() -> tuple[str, str]:
    """(``--weights`` value, a note on where they come from)."""
    import torch

    from alexnet_spec.imagenet import IMAGENET1K_V1, keras_cache_dir

    converted = keras_cache_dir() / IMAGENET1K_V1.converted_name
    if not converted.is_file():
        return "random", (
            f"pretrained weights not found at {converted}; seeded random weights instead. For the real "
            f"classification run once (needs network):\n    {IMAGENET1K_V1.port_command(converted)}"
        )
    checkpoint = os.path.join(torch.hub.get_dir(), "checkpoints", IMAGENET1K_V1.file_name)
    if os.path.isfile(checkpoint):
        return "imagenet", f"PyTorch: torchvision's {checkpoint}; Keras: {converted}"
    return str(converted), f"both frameworks read {converted} (torchvision's checkpoint is not in torch's cache)"


def main(argv: list[str] | None = None) -> int:
    from alexnet_cli.console import EXIT_DIFFER, EXIT_OK, import_frameworks
    from alexnet_cli.predict import FRAMEWORKS, classify, format_result, load_models, preprocess

    import_frameworks(torch=True, keras=True)
    weights, note = choose_weights()
    models = load_models(FRAMEWORKS, "torchvision", weights, seed=0)
    result = classify(models, preprocess(chelsea(), FRAMEWORKS, "torchvision"))
    print("Classifying scikit-image's 'chelsea' photograph (a cat) with AlexNet 'torchvision'")
    print(f"weights: {models.label}\n({note})\n")
    print(format_result("chelsea", result))
    return EXIT_OK if result["agree"] else EXIT_DIFFER


if __name__ == "__main__":
    sys.exit(main())
