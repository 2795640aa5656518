"""Data sets both frameworks read from the same files, with numpy (and PIL for image folders) only.

Three sources, one interface (``len``, ``image(i)`` -> uint8 HWC RGB array, ``labels``,
``classes``):

- CIFAR-10 in its standard on-disk form, the ``cifar-10-batches-py`` folder torchvision and
  ``keras.datasets`` both use. Its batches are pickles, and unpickling runs whatever a pickle says,
  so :class:`CifarUnpickler` admits only the three numpy names the format needs.
- ImageNet-style folders (``ROOT/train/CLASS/*.jpg``, ``ROOT/val/CLASS/*.jpg``), read with
  ``alexnet_training.images.open_rgb``.
- scikit-learn's bundled handwritten digits (1,797 real 8x8 images, no network needed), upscaled
  to the 32x32 RGB the ``cifar`` network reads.

``parse_data("digits" | "cifar10:DIR" | "imagefolder:DIR")`` returns the (train, val) pair.
Every check runs before a caller writes anything, and fails with a ValueError that names what was
expected and what was found.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # published beside the archive
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

DIGITS_SIZE = 32  # 8x8 digits, each pixel repeated 4x4: the cifar network's input
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0  # the split is part of the data set, not of a run's seed
SUBSET_SEED = 0  # --limit's subset, likewise: the same items whatever a run's seed
_SUBSET = 0x5B5E  # stream tag of the subset's generator


class DataError(ValueError):
    """Data that cannot be used; the message says what was expected, what was found, what to do."""


@dataclass
class ArrayData:
    """Images held in memory: uint8 (N, H, W, 3) and int labels."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str
    flip_ok: bool = True  # whether a horizontal reflection keeps the class (not for digits)

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        return self.images[index]


@dataclass
class FolderData:
    """``ROOT/CLASS/*.jpg``: files decoded on demand, RGB via ``open_rgb``."""

    files: tuple[Path, ...]
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str
    flip_ok: bool = True
    sizes: tuple[tuple[int, int], ...] | None = None  # (width, height) of each file, from its header

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        from alexnet_training.images import open_rgb

        return np.asarray(open_rgb(self.files[index]), dtype=np.uint8)


# --- CIFAR-10 ------------------------------------------------------------------------------------


class CifarUnpickler(pickle.Unpickler):
    """Admits what a CIFAR-10 batch holds and nothing else.

    A batch is a dict of bytes keys to bytes, lists of ints/bytes and one uint8 numpy array. Plain
    containers, bytes and ints need no global; the array needs exactly these three. Any other
    global (``os.system``, ``builtins.eval``, ``subprocess.Popen``...) is refused before it runs.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # written by numpy 1 (the published batches)
        ("numpy._core.multiarray", "_reconstruct"),  # written by numpy 2
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refused {module}.{name}: a CIFAR-10 batch holds only numpy arrays, lists, ints and bytes"
            )
        if name == "_reconstruct":
            core = getattr(np, "_core", None)
            return (core.multiarray if core is not None else np.core.multiarray)._reconstruct
        return getattr(np, name)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One ``cifar-10-batches-py`` batch as uint8 (N, 32, 32, 3) images and int64 labels."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = CifarUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as err:
        raise DataError(f"{path} is not a CIFAR-10 batch: {err}. Use the cifar-10-batches-py files as published.") from err
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({type(err).__name__}: {err}); "
                        "the file may be truncated. Download it again.") from err
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a dict with 'data' and 'labels'; found {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        found = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else
                 "no 'data' field" if data is None else type(data).__name__)
        raise DataError(f"{path}: expected 'data' as uint8 (N, 3072) (32x32x3, channel-planar); found {found}. "
                        "Use the cifar-10-batches-py files as published.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), _cifar_labels(path, batch.get("labels"), len(data))


def _cifar_labels(path: Path, labels, count: int) -> np.ndarray:
    """A batch's 'labels': ``count`` integers in 0..9, as a list (the published form) or an integer
    array. A cast would take 0.5 as class 0 and overflow on 2**70, so each value's type is checked."""
    expected = f"{path}: expected 'labels' as {count} integers in 0..9, one per image"
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        values = labels.tolist()
    elif isinstance(labels, (list, tuple)):
        values = labels
        odd = next((v for v in values if type(v) is not int), None)
        if odd is not None:
            raise DataError(f"{expected}; found {type(odd).__name__} {odd!r:.40}. Use the cifar-10-batches-py "
                            "files as published.")
    else:
        found = ("no 'labels' field" if labels is None else f"an array of {labels.dtype} {labels.shape}"
                 if isinstance(labels, np.ndarray) else type(labels).__name__)
        raise DataError(f"{expected}; found {found}. Use the cifar-10-batches-py files as published.")
    if len(values) != count:
        raise DataError(f"{expected}; found {len(values)} labels for {count} images")
    low, high = min(values, default=0), max(values, default=0)
    if low < 0 or high > 9:
        raise DataError(f"{expected}; found values from {low} to {high}")
    return np.asarray(values, dtype=np.int64)


def read_cifar10(root: str | os.PathLike, train_batches: tuple[str, ...] = CIFAR10_TRAIN) -> tuple[ArrayData, ArrayData]:
    """``root`` is the ``cifar-10-batches-py`` folder, or a folder holding it."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not root.is_dir():
        raise DataError(f"no such folder: {root}. Expected the cifar-10-batches-py folder "
                        f"({download_hint(root)} fetches it).")
    names = [*train_batches, CIFAR10_TEST]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        found = sorted(p.name for p in root.iterdir())[:8]
        raise DataError(f"{root} is not a cifar-10-batches-py folder: missing {', '.join(missing)} "
                        f"(found {found or 'nothing'}). Expected data_batch_1..5 and test_batch.")
    parts = [read_cifar_batch(root / n) for n in train_batches]
    train = ArrayData(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                      CIFAR10_CLASSES, f"cifar10:{root} train")
    x, y = read_cifar_batch(root / CIFAR10_TEST)
    return train, ArrayData(x, y, CIFAR10_CLASSES, f"cifar10:{root} test")


def download_hint(root: Path) -> str:
    """The command that puts CIFAR-10 where ``read_cifar10(root)`` looks."""
    directory = root.parent if root.name == "cifar-10-batches-py" else root
    return f"python -c \"from alexnet_training.data import download_cifar10; download_cifar10({str(directory)!r})\""


def download_cifar10(directory: str | os.PathLike, *, progress: bool = True) -> Path:
    """Fetch CIFAR-10's archive into ``directory`` (a tqdm progress bar unless ``progress`` is
    False; md5 checked), unpack its batches, return the ``cifar-10-batches-py`` folder."""
    import shutil
    import tempfile
    import urllib.request

    from alexnet_spec.files import atomic_write

    directory = Path(directory)
    target = directory / "cifar-10-batches-py"
    if target.is_dir():
        return target
    with contextlib.ExitStack() as stack:
        response = stack.enter_context(urllib.request.urlopen(CIFAR10_URL, timeout=60))
        if progress:
            from tqdm import tqdm  # the `train` extra; imported here, so importing this module stays cheap

            response = stack.enter_context(tqdm.wrapattr(
                response, "read", total=int(response.headers.get("Content-Length") or 0) or None,
                desc=CIFAR10_URL.rsplit("/", 1)[1]))
        archive = stack.enter_context(tempfile.TemporaryFile())
        shutil.copyfileobj(response, archive)
        archive.seek(0)
        digest = hashlib.file_digest(archive, "md5").hexdigest()
        if digest != CIFAR10_MD5:
            raise DataError(f"the downloaded archive's md5 is {digest}; expected {CIFAR10_MD5}. "
                            "The download is corrupt or was tampered with: try again.")
        archive.seek(0)
        tar = stack.enter_context(tarfile.open(fileobj=archive, mode="r:gz"))
        for member in tar.getmembers():
            name = Path(member.name)
            if not member.isfile() or name.parent.name != "cifar-10-batches-py" or ".." in name.parts:
                continue
            data = tar.extractfile(member).read()
            atomic_write(target / name.name, lambda tmp, data=data: Path(tmp).write_bytes(data), overwrite=True)
    return target


# --- image folders -------------------------------------------------------------------------------


def read_image_folder(root: str | os.PathLike, *, check_images: bool = True) -> FolderData:
    """``root/CLASS/*.jpg``: classes are the sorted sub-folder names (as torchvision's
    ``ImageFolder``); every image's header is opened up front when ``check_images``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no such folder: {root}. Expected ROOT/CLASS/IMAGE.jpg (ImageNet layout).")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not classes:
        loose = [p.name for p in root.iterdir() if p.is_file()][:5]
        raise DataError(f"{root} holds no class folders (found {loose or 'nothing'}); expected "
                        f"{root}/CLASS/IMAGE.jpg, one sub-folder per class.")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"class folder {root / name} holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...); "
                            "every class needs at least one.")
        files += found
        labels += [label] * len(found)
    return FolderData(tuple(files), np.asarray(labels, dtype=np.int64), classes, f"imagefolder:{root}",
                      sizes=image_sizes(files) if check_images else None)


def image_sizes(files) -> tuple[tuple[int, int], ...]:
    """Each file's (width, height) from its header, no pixel decoded: a corrupt file, or one that
    declares more than ``images.MAX_PIXELS`` pixels, fails now, named, before anything is written."""
    from alexnet_training.images import ImageError, open_header

    sizes = []
    for path in files:
        try:
            with open_header(path) as image:
                sizes.append(image.size)
                image.verify()
        except ImageError as err:
            raise DataError(str(err)) from err
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"cannot read {path} as an image ({err}). Remove or replace it.") from err
    return tuple(sizes)


def check_sizes(data, min_side: int, need: str) -> None:
    """Refuse ``data`` when an image's shorter side is below ``min_side``, naming the first such
    file and its size: found when the data is read, not when an epoch reaches the image."""
    if isinstance(data, ArrayData):
        h, w = data.images.shape[1:3]
        small = [(data.name, (w, h))] if len(data) and min(w, h) < min_side else []
    else:
        sizes = data.sizes if data.sizes is not None else image_sizes(data.files)
        small = [(path, (w, h)) for path, (w, h) in zip(data.files, sizes) if min(w, h) < min_side]
    if small:
        name, (w, h) = small[0]
        more = f" (and {len(small) - 1} more images)" if len(small) > 1 else ""
        raise DataError(f"{name} is {w}x{h} pixels{more}; {need} need images of at least {min_side}x{min_side}. "
                        "Replace it with a larger image, or remove it.")


def read_imagefolders(root: str | os.PathLike) -> tuple[FolderData, FolderData]:
    root = Path(root)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            found = sorted(p.name for p in root.iterdir())[:8] if root.is_dir() else "no such folder"
            raise DataError(f"{root} needs train/ and val/ sub-folders (ROOT/train/CLASS/*.jpg, "
                            f"ROOT/val/CLASS/*.jpg); {split}/ is missing (found {found}).")
    train, val = read_image_folder(root / "train"), read_image_folder(root / "val")
    if train.classes != val.classes:
        only_train = sorted(set(train.classes) - set(val.classes))[:5]
        only_val = sorted(set(val.classes) - set(train.classes))[:5]
        raise DataError(f"{root}: train/ has {len(train.classes)} classes and val/ {len(val.classes)}; they "
                        f"must be the same folders (only in train: {only_train}, only in val: {only_val}).")
    return train, val


# --- scikit-learn's digits -----------------------------------------------------------------------


def load_digits(size: int = DIGITS_SIZE) -> tuple[ArrayData, ArrayData]:
    """scikit-learn's 1,797 8x8 digits (values 0..16), each pixel repeated to ``size``x``size``,
    grey copied to RGB, scaled to 0..255; a fixed, stratified 80/20 split (360 test images)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as err:
        raise DataError("the digits data set needs scikit-learn: pip install 'alexnet-parity[train]'") from err
    digits = sklearn_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    factor = size // 8
    images = images.repeat(factor, axis=1).repeat(factor, axis=2)
    images = np.repeat(images[..., None], 3, axis=3)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):  # stratified: 20% of each class
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: int(round(len(members) * DIGITS_TEST_FRACTION))]] = True
    classes = tuple(str(c) for c in range(10))
    return (ArrayData(images[~test], labels[~test], classes, "digits train", flip_ok=False),
            ArrayData(images[test], labels[test], classes, "digits test", flip_ok=False))


def stratified_indices(labels: np.ndarray, n: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """``n`` indices into ``labels`` (sorted; all of them when there are fewer), each class's share
    as in the whole (largest remainders get the odd ones, ties to the lower class), drawn at random
    within each class by a generator seeded with ``seed``.

    The first ``n`` items would be one class of a class-sorted folder (``imagefolder``,
    ``torchvision.datasets.ImageFolder``'s order), and a model trained on it learns nothing."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(int)
    for c in np.argsort(-(quota - take), kind="stable")[: n - take.sum()]:
        take[c] += 1
    rng = np.random.default_rng([seed, _SUBSET])
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def subset(data, n: int, seed: int = SUBSET_SEED):
    """``n`` items of ``data`` by :func:`stratified_indices` (all of them when it has fewer): a
    function of the labels, ``n`` and ``seed`` alone, so both frameworks read the same items."""
    import dataclasses

    keep = stratified_indices(data.labels, n, seed)
    name = f"{data.name}[{len(keep)} of {len(data)}, seed {seed}]"
    if isinstance(data, ArrayData):
        return dataclasses.replace(data, images=data.images[keep], labels=data.labels[keep], name=name)
    sizes = None if data.sizes is None else tuple(data.sizes[i] for i in keep)
    return dataclasses.replace(data, files=tuple(data.files[i] for i in keep), labels=data.labels[keep], name=name,
                               sizes=sizes)


def parse_data(spec: str):
    """``digits``, ``cifar10:DIR`` or ``imagefolder:DIR`` -> (train, val)."""
    kind, sep, where = spec.partition(":")
    if kind == "digits" and not sep:
        return load_digits()
    if kind == "cifar10" and where:
        return read_cifar10(where)
    if kind == "imagefolder" and where:
        return read_imagefolders(where)
    raise DataError(f"--data takes digits, cifar10:DIR or imagefolder:DIR; found {spec!r}")


__all__ = [
    "ArrayData", "CifarUnpickler", "DataError", "FolderData", "check_sizes", "download_cifar10", "image_sizes",
    "load_digits",
    "parse_data", "read_cifar10", "stratified_indices", "subset", "read_cifar_batch", "read_image_folder", "read_imagefolders",
]
