"""Augmentation throughput: images per second that one worker turns from JPEG files into a
network's input, through ``alexnet_training.augment.Pipeline`` (decode, resize, crop, flip, PCA
lighting, normalize: the recipe's training transform), against ``torchvision.transforms.v2`` doing
the same on the same files in the same run.

The files are real photographs without a network: scikit-learn's two sample JPEGs (china.jpg and
flower.jpg, 427x640), cut into crops of varied size and rescaled, saved by PIL at quality 90 in a
temporary folder and read back as an image folder (``alexnet_training.data.read_image_folder``).
One worker means one process and one thread (``torch.set_num_threads(1)``, what a ``DataLoader``
worker gets), so the numbers are per worker: N workers give at most N times as much.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from alexnet_spec.text import format_table

PIPELINE_RECIPES = ("paper", "torchvision")  # the ImageNet recipes: 227 and 224 crops of photographs
SAMPLE_IMAGES = 64
REPS, QUICK_REPS = 3, 1
PIPELINES = ("alexnet_training", "v2 PIL decode", "v2 decode_jpeg")


def sample_folder(root, count: int = SAMPLE_IMAGES, *, seed: int = 0) -> Path:
    """``root/PHOTO/NNN.jpg``: ``count`` JPEGs cut from scikit-learn's sample photographs, each a
    random crop of at least half of each side, rescaled by 0.75-1.5, saved at quality 90."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    rng = np.random.default_rng(seed)
    root = Path(root)
    for i in range(count):
        k = i % len(photos.images)
        image = photos.images[k]
        h, w = image.shape[:2]
        ch, cw = int(rng.integers(h // 2, h + 1)), int(rng.integers(w // 2, w + 1))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        scale = rng.uniform(0.75, 1.5)
        crop = Image.fromarray(image[top:top + ch, left:left + cw])
        crop = crop.resize((round(cw * scale), round(ch * scale)), Image.BILINEAR)
        folder = root / Path(photos.filenames[k]).stem
        folder.mkdir(parents=True, exist_ok=True)
        crop.save(folder / f"{i:03d}.jpg", quality=90)
    return root


def lighting(std: float):
    """The recipe's PCA lighting as a ``v2.Lambda`` body (torchvision has no such transform): one
    ``alpha ~ N(0, std)`` per image, ``eigvec @ (alpha * eigval)`` added to every pixel of a float
    CHW image in [0, 1]."""
    import torch

    from alexnet_training.recipes import IMAGENET_EIGVAL, IMAGENET_EIGVEC

    eigval, eigvec = torch.tensor(IMAGENET_EIGVAL), torch.tensor(IMAGENET_EIGVEC)

    def add(x):
        return x + (eigvec @ (torch.randn(3) * std * eigval))[:, None, None]

    return add


def torchvision_transform(augment, *, from_pil: bool):
    """``augment`` (an ``alexnet_training.recipes.Augment``) as ``torchvision.transforms.v2``: on a
    PIL image (``from_pil``) or on a uint8 CHW tensor from ``torchvision.io.decode_jpeg``."""
    import torch
    from torchvision.transforms import v2

    steps = [v2.PILToTensor()] if from_pil else []
    if augment.random_resized:
        steps.append(v2.RandomResizedCrop(augment.crop, scale=augment.scale, ratio=augment.ratio, antialias=True))
    else:
        if augment.resize:
            steps.append(v2.Resize(augment.resize, antialias=True))
            if augment.square:
                steps.append(v2.CenterCrop(augment.resize))
        steps.append(v2.RandomCrop(augment.crop))
    if augment.flip:
        steps.append(v2.RandomHorizontalFlip())
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if augment.lighting:
        steps.append(v2.Lambda(lighting(augment.lighting)))
    steps.append(v2.Normalize(augment.mean, augment.std))
    return v2.Compose(steps)


def _loaders(data, augment) -> dict:
    """One call per pipeline: image ``index`` of epoch ``epoch``, decoded and transformed."""
    from PIL import Image
    from torchvision.io import decode_jpeg, read_file

    from alexnet_training.augment import Pipeline

    ours = Pipeline(data, augment, train=True, seed=0, batch_size=1)
    on_pil = torchvision_transform(augment, from_pil=True)
    on_tensor = torchvision_transform(augment, from_pil=False)

    def pil_rgb(path):
        with Image.open(path) as image:
            return image.convert("RGB")

    return {
        "alexnet_training": lambda index, epoch: ours.transform(index, epoch),
        "v2 PIL decode": lambda index, epoch: on_pil(pil_rgb(data.files[index])),
        "v2 decode_jpeg": lambda index, epoch: on_tensor(decode_jpeg(read_file(str(data.files[index])))),
    }


def measure_pipelines(recipes=PIPELINE_RECIPES, *, images: int = SAMPLE_IMAGES, reps: int = REPS) -> list[dict]:
    """One row per recipe and pipeline: images/s of one worker, over ``reps`` passes through
    ``images`` JPEGs, the pipelines alternating pass by pass (the load here drifts)."""
    import torch

    from alexnet_training.data import read_image_folder
    from alexnet_training.recipes import get_recipe

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="pipeline-") as root:
            data = read_image_folder(sample_folder(root, images))
            shorter = [min(np.asarray(data.image(i)).shape[:2]) for i in range(len(data))]
            for name in recipes:
                augment = get_recipe(name).augment
                loaders = _loaders(data, augment)
                for load in loaders.values():
                    load(0, 0)  # warm up: imports, first allocations
                seconds = dict.fromkeys(loaders, 0.0)
                for epoch in range(reps):
                    for pipeline, load in loaders.items():
                        start = time.perf_counter()
                        for index in range(len(data)):
                            load(index, epoch)
                        seconds[pipeline] += time.perf_counter() - start
                for pipeline, total in seconds.items():
                    n = reps * len(data)
                    rows.append({"recipe": name, "pipeline": pipeline, "crop": augment.crop, "images": len(data),
                                 "reps": reps, "ms_per_image": 1e3 * total / n, "images_per_s": n / total,
                                 "lighting": augment.lighting,
                                 "shorter_side": [int(min(shorter)), int(max(shorter))]})
                    print(f"  {name:12s} {pipeline:18s} {n / total:8.1f} img/s per worker", flush=True)
    finally:
        torch.set_num_threads(threads)
    return rows


def pipeline_table(rows: list[dict]) -> str:
    head = ["recipe", "pipeline", "crop", "ms/image", "img/s per worker", "vs ours"]
    ours = {r["recipe"]: r["images_per_s"] for r in rows if r["pipeline"] == "alexnet_training"}
    body = [[r["recipe"], r["pipeline"], str(r["crop"]), f"{r['ms_per_image']:.2f}", f"{r['images_per_s']:.1f}",
             f"{r['images_per_s'] / ours[r['recipe']]:.2f}" if r["recipe"] in ours else "-"] for r in rows]
    lines = format_table(head, body, right=range(2, len(head)))
    first = rows[0] if rows else {"images": 0, "reps": 0}
    lines.append(f"Pipeline: one worker (one process, one thread) turning {first['images']} JPEGs cut from scikit-learn's "
                 f"sample photographs into the recipe's training input, {first['reps']} passes, the pipelines "
                 "alternating: alexnet_training.augment.Pipeline (PIL decode, resize, crop, flip, PCA lighting, "
                 "normalize) against torchvision.transforms.v2 on the same files (PIL's decoder, or "
                 "torchvision.io.decode_jpeg on uint8 tensors); v2 has no PCA lighting, so its rows add it as a "
                 "v2.Lambda. vs ours: img/s over the alexnet_training row's.")
    return "\n".join(lines)


__all__ = ["PIPELINE_RECIPES", "lighting", "measure_pipelines", "pipeline_table", "sample_folder",
           "torchvision_transform"]
