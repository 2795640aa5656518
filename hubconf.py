"""torch.hub entry points: ``torch.hub.load(repo, "alexnet_paper")``, ``"alexnet_torchvision"``, and
``"alexnet_<variant>"`` for every variant ``alexnet_torch`` has when this file is imported.

``pretrained=True`` is the legacy spelling of ``weights="IMAGENET1K_V1"`` (the source document's
``torch.hub.load('pytorch/vision:v0.6.0', 'alexnet', pretrained=True)``); variants without
published weights refuse it.
"""

dependencies = ["torch", "torchvision", "numpy", "safetensors"]

import alexnet_torch as _alexnet_torch  # noqa: E402
from alexnet_spec.imagenet import PRETRAINED as _PRETRAINED  # noqa: E402


def _entry(variant: str):
    def load(*, pretrained: bool = False, **kwargs):
        if pretrained:
            published = [w.name for w in _PRETRAINED.values() if w.variant == variant]
            if not published:
                raise ValueError(f"the {variant!r} AlexNet has no published weights; pass weights=PATH instead")
            if kwargs.get("weights") not in (None, published[0]):
                raise ValueError("pass pretrained=True or weights=..., not both")
            kwargs["weights"] = published[0]
        return _alexnet_torch.build(variant, **kwargs)

    load.__name__ = f"alexnet_{variant}"
    load.__doc__ = f"AlexNet {variant!r} from alexnet_torch.build (random unless weights= or pretrained=True)."
    return load


for _variant in _alexnet_torch.VARIANTS:
    globals()[f"alexnet_{_variant}"] = _entry(_variant)
