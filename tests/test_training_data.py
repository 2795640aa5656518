"""Recipes, data readers and the framework-neutral augmenter (numpy only, no framework)."""

import io
import os
import pickle
import re

import numpy as np
import pytest

from alexnet_training import data as D
from alexnet_training.augment import Pipeline
from alexnet_training.recipes import CIFAR, PAPER, RECIPES, TORCHVISION, learning_rate


def write_cifar(root, n=20, seed=0):
    """A cifar-10-batches-py folder in the published format: pickled dicts with bytes keys."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in (*D.CIFAR10_TRAIN, D.CIFAR10_TEST):
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(0, 10, n)],
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    return folder


class Hostile:
    """Unpickling this runs ``os.system``: it writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_reader_reads_the_format(tmp_path):
    folder = write_cifar(tmp_path)
    train, test = D.read_cifar10(tmp_path)
    assert train.images.shape == (100, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (20, 32, 32, 3) and train.classes == D.CIFAR10_CLASSES
    raw = pickle.loads((folder / "data_batch_1").read_bytes())
    # channel-planar rows: the first 1024 bytes are the red plane of image 0
    np.testing.assert_array_equal(train.images[0, :, :, 0].ravel(), raw[b"data"][0, :1024])
    assert list(train.labels[:20]) == raw[b"labels"]


def test_hostile_pickle_in_a_data_folder_never_runs(tmp_path):
    folder = write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": Hostile(marker)}, protocol=4))
    with pytest.raises(D.DataError, match="refused posix.system|refused os.system"):
        D.read_cifar10(folder)
    assert not marker.exists()
    # the same bytes through the standard unpickler do run: the test's pickle is truly hostile
    pickle.loads((folder / "data_batch_3").read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("payload", [b"not a pickle", pickle.dumps([1, 2, 3]), pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]})])
def test_cifar_reader_refuses_malformed_batches(tmp_path, payload):
    folder = write_cifar(tmp_path)
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(D.DataError, match="test_batch"):
        D.read_cifar10(folder)


def test_cifar_reader_names_missing_batches(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_5").unlink()
    with pytest.raises(D.DataError, match="missing data_batch_5"):
        D.read_cifar10(folder)


class _Download(io.BytesIO):
    """What ``urllib.request.urlopen`` returns, serving bytes from memory."""

    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


@pytest.mark.parametrize("progress", [True, False])
def test_a_missing_cifar_folder_names_the_command_that_fetches_it(tmp_path, monkeypatch, progress):
    import hashlib
    import shlex
    import tarfile
    import urllib.request

    source = write_cifar(tmp_path / "source")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Download(archive.getvalue()))
    monkeypatch.setattr(D, "CIFAR10_MD5", hashlib.md5(archive.getvalue()).hexdigest())
    monkeypatch.setattr(D, "download_cifar10", lambda d, progress=progress, f=D.download_cifar10: f(d, progress=progress))
    target = tmp_path / "data"
    with pytest.raises(D.DataError, match="download_cifar10") as refused:
        D.read_cifar10(target / "cifar-10-batches-py")
    command = shlex.split(str(refused.value).split("(", 1)[1].rsplit(" fetches it", 1)[0])
    assert command[:2] == ["python", "-c"], command
    exec(command[2], {})  # the command as a user runs it, with the network replaced
    train, test = D.read_cifar10(target)
    assert len(train) == 5 * 20 and len(test) == 20

    monkeypatch.setattr(D, "CIFAR10_MD5", "0" * 32)
    with pytest.raises(D.DataError, match="md5"):
        D.download_cifar10(tmp_path / "other", progress=progress)
    assert not (tmp_path / "other").exists()


def test_digits_are_real_and_split_without_overlap():
    train, test = D.load_digits()
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert train.images.shape[1:] == (32, 32, 3) and train.images.max() == 255
    assert not train.flip_ok  # a mirrored 2 is no 2
    both = np.concatenate([train.images, test.images]).reshape(1797, -1)
    assert len(np.unique(both, axis=0)) > 1700  # distinct images, not one repeated
    assert set(np.unique(test.labels)) == set(range(10))


def test_image_folder_layout_errors(tmp_path):
    from PIL import Image

    with pytest.raises(D.DataError, match="train/ and val/"):
        D.read_imagefolders(tmp_path)
    for split in ("train", "val"):
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.new("RGB", (40, 30), (10, 20, 30)).save(tmp_path / split / "cat" / "a.jpg")
    (tmp_path / "train" / "dog").mkdir()
    with pytest.raises(D.DataError, match="holds no images"):
        D.read_imagefolders(tmp_path)
    Image.new("RGB", (40, 30)).save(tmp_path / "train" / "dog" / "b.png")
    with pytest.raises(D.DataError, match="only in train: \\['dog'\\]"):
        D.read_imagefolders(tmp_path)
    (tmp_path / "val" / "dog").mkdir()
    (tmp_path / "val" / "dog" / "c.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(D.DataError, match="c.jpg"):
        D.read_imagefolders(tmp_path)
    Image.new("RGB", (40, 30)).save(tmp_path / "val" / "dog" / "c.jpg")
    train, val = D.read_imagefolders(tmp_path)
    assert train.classes == ("cat", "dog") and len(val) == 2
    assert train.image(0).shape == (30, 40, 3)


def test_recipes_cite_sources_and_schedules():
    assert set(RECIPES) == {"paper", "torchvision", "cifar", "finetune"}
    for r in RECIPES.values():
        assert r.source and r.deviations and r.accuracy
    assert PAPER.augment.crop == 227 and PAPER.augment.lighting == 0.1 and PAPER.test_crops == "10crop"
    assert (TORCHVISION.lr, TORCHVISION.weight_decay, TORCHVISION.step, TORCHVISION.epochs) == (0.01, 1e-4, 30, 90)
    assert [learning_rate(TORCHVISION, e) for e in (0, 29, 30, 60)] == pytest.approx([1e-2, 1e-2, 1e-3, 1e-4])
    # plateau: 5 epochs without a better val_top1 divide by 10
    history = [0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3]
    assert learning_rate(PAPER, 7, history) == pytest.approx(1e-3)
    assert learning_rate(PAPER, 6, history) == pytest.approx(1e-2)


def test_augmentation_is_a_function_of_seed_epoch_index():
    train, _ = D.load_digits()
    a = Pipeline(train, CIFAR.augment, train=True, seed=3, batch_size=16)
    b = Pipeline(train, CIFAR.augment, train=True, seed=3, batch_size=16)
    # computed in another order, by another object: the same samples
    later = [b.transform(i, 1) for i in (7, 5, 3)]
    np.testing.assert_array_equal(np.stack([a.transform(i, 1) for i in (3, 5, 7)]), np.stack(later[::-1]))
    assert not np.array_equal(a.transform(3, 1), a.transform(3, 2))  # another epoch, another crop
    assert not np.array_equal(a.order(0), a.order(1))
    assert len(a) == len(train) - len(train) % 16 and a.num_batches == len(train) // 16
    x, y = a.batch(0, 0)
    assert x.shape == (16, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int64
    crops = Pipeline(train, PAPER.augment, train=False).ten_crops(0)
    assert crops.shape == (10, 227, 227, 3)
    np.testing.assert_array_equal(crops[5], crops[0][:, ::-1])


def test_exchange_keeps_zero_dimensional_tensors(tmp_path):
    """BatchNorm's num_batches_tracked is a 0-d tensor; a trained cifar model saved as .safetensors
    must load back into torch (np.ascontiguousarray alone made it (1,))."""
    from alexnet_spec import exchange

    state = {"features.1.num_batches_tracked": np.array(7, dtype=np.int64), "w": np.ones((2, 3), np.float32)}
    exchange.save(tmp_path / "m.safetensors", exchange.Exchange(state, "cifar", {"logits": True}))
    back = exchange.load(tmp_path / "m.safetensors")
    assert back.state["features.1.num_batches_tracked"].shape == ()
    assert int(back.state["features.1.num_batches_tracked"]) == 7


def test_limit_takes_every_class_in_its_share_not_the_first_files(tmp_path):
    from PIL import Image

    # a class-sorted folder, as ImageFolder orders it: 12 cats, 6 dogs, 6 owls
    for split in ("train", "val"):
        for cls, count in (("cat", 12), ("dog", 6), ("owl", 6)):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / split / cls / f"{i:02d}.png")
    train, _ = D.read_imagefolders(tmp_path)
    small = D.subset(train, 8)
    # shares 4 / 2 / 2, where the first 8 files are all cats
    assert np.bincount(small.labels).tolist() == [4, 2, 2]
    assert set(np.asarray(train.labels[:8])) == {0}
    assert all(f.parent.name == train.classes[y] for f, y in zip(small.files, small.labels))
    # seeded: the same files every time, other files with another seed, not simply each class's first
    assert D.subset(train, 8).files == small.files
    other = D.subset(train, 8, seed=1)
    assert other.files != small.files and np.bincount(other.labels).tolist() == [4, 2, 2]
    picked = [int(f.stem) for f in small.files if f.parent.name == "cat"]
    assert picked != [0, 1, 2, 3]
    # odd counts go to the largest remainders; n >= len keeps everything
    assert np.bincount(D.subset(train, 7).labels).tolist() == [3, 2, 2]  # quotas 3.5, 1.75, 1.75
    assert len(D.subset(train, 100)) == len(train)


def test_limit_on_arrays_keeps_images_with_their_labels():
    labels = np.repeat(np.arange(10), 30)  # class-sorted
    images = np.zeros((300, 1, 1, 3), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(300) // 256, np.arange(300) % 256  # each its index
    small = D.subset(D.ArrayData(images, labels, tuple("0123456789"), "sorted"), 50)
    assert np.bincount(small.labels).tolist() == [5] * 10
    kept = small.images[:, 0, 0, 0].astype(int) * 256 + small.images[:, 0, 0, 1]
    np.testing.assert_array_equal(labels[kept], small.labels)
    assert list(kept) == sorted(kept) and len(set(kept.tolist())) == 50


# --- data checked when it is read (issue 19) --------------------------------------------------------


def cifar_batch(tmp_path, **fields):
    """A test_batch of 20 images whose fields are ``fields`` (None: the field is left out)."""
    folder = write_cifar(tmp_path)
    batch = {b"data": np.zeros((20, 3072), np.uint8), b"labels": [1] * 20}
    for key, value in fields.items():
        batch.pop(key.encode()) if value is None else batch.__setitem__(key.encode(), value)
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
    return folder


@pytest.mark.parametrize("labels", [
    [2 ** 70] * 20, [b"cat"] * 20, ["cat"] * 20, [0.5] * 20, None, [10] * 20, [-1] * 20, [True] * 20, [1] * 19,
    [[1]] * 20, np.full(20, 0.5), b"\x01" * 20,
], ids=["2**70", "bytes", "str", "float", "missing", "10", "-1", "bool", "19-of-20", "nested", "float-array",
        "bytes-field"])
def test_cifar_labels_are_integers_in_0_to_9_one_per_image(tmp_path, labels):
    """A cast took 0.5 as class 0 and failed on 2**70 or b'cat' with "This is a bug": each value's
    type is checked, and the refusal names the file and the field."""
    folder = cifar_batch(tmp_path, labels=labels)
    with pytest.raises(D.DataError, match=r"test_batch: expected 'labels' as 20 integers in 0\.\.9, one per image"):
        D.read_cifar10(folder)


def test_cifar_labels_as_published_or_as_an_integer_array_are_read(tmp_path):
    folder = cifar_batch(tmp_path, labels=np.arange(20, dtype=np.uint8) % 10)
    assert list(D.read_cifar10(folder)[1].labels) == [i % 10 for i in range(20)]


def forged_png(path, width, height):
    """A PNG whose header declares ``width`` x ``height`` and whose pixels are missing: a few dozen
    bytes that PIL's lazy open sizes from the header alone, and that no decoder could read."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


def image_folders(root, size=(40, 40), per_class=4):
    """ROOT/{train,val}/{a,b}/N.png, plain grey images of ``size``."""
    from PIL import Image

    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", size, (90, 90, 90)).save(root / split / name / f"{i}.png")
    return root


@pytest.mark.parametrize("width, height", [(12000, 12000), (30000, 30000)])
def test_an_image_declaring_too_many_pixels_is_refused_from_its_header(tmp_path, width, height):
    """12000x12000 was accepted with two raw PIL warnings (2.66 GB to decode), 30000x30000 failed
    with "This is a bug": both are refused when the folder is read, the file named, no warning."""
    import warnings

    from alexnet_training.images import MAX_PIXELS

    root = image_folders(tmp_path)
    bomb = forged_png(tmp_path / "val" / "b" / "bomb.png", width, height)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning would fail the test
        with pytest.raises(D.DataError, match=rf"{re.escape(str(bomb))} .*limit.* {MAX_PIXELS:,}") as refused:
            D.read_imagefolders(root)
    if width * height <= 2 * 89_478_485:  # below PIL's own error: the header's size is named
        assert f"{width}x{height}" in str(refused.value)


def test_the_pixel_limit_is_checked_before_any_pixel_is_decoded(tmp_path):
    """``open_header`` admits exactly MAX_PIXELS and refuses one more (PIL warns above its limit,
    which is the same number: no warning either side); ``open_rgb`` refuses before decoding."""
    import warnings

    from alexnet_training.images import MAX_PIXELS, ImageError, open_header, open_rgb

    assert MAX_PIXELS == 5 * 17_895_697
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_header(forged_png(tmp_path / "at.png", 5, 17_895_697)) as image:
            assert image.size == (5, 17_895_697)
        over = forged_png(tmp_path / "over.png", 2, 44_739_243)  # 89,478,486 pixels
        for opener in (open_header, open_rgb):
            with pytest.raises(ImageError, match=r"over\.png declares 2x44739243 = 89,478,486 pixels"):
                opener(over)


@pytest.mark.parametrize("recipe, train, side, refused", [
    (CIFAR, True, 23, True), (CIFAR, True, 24, False),  # zero-padded by 4, then a random 32x32 crop
    (CIFAR, False, 31, True), (CIFAR, False, 32, False),  # the center 32x32, no padding
    (PAPER, True, 8, False), (PAPER, False, 8, False),  # resized to 256 first
    (TORCHVISION, True, 8, False), (TORCHVISION, False, 8, False),  # random resized crop; resized to 256 first
])
def test_a_pipeline_refuses_images_too_small_for_its_crops_naming_the_file(tmp_path, recipe, train, side, refused):
    """An 8x8 image with the cifar recipe failed about 10 s into training, no file named, run.json
    left behind: the sizes read from the headers are checked when the Pipeline is made."""
    from PIL import Image

    for name, size in (("a", (240, 240)), ("b", (side + 5, side))):
        (tmp_path / name).mkdir()
        Image.new("RGB", size, (90, 90, 90)).save(tmp_path / name / "x.png")
    small = tmp_path / "b" / "x.png"
    data = D.read_image_folder(tmp_path)
    if refused:
        with pytest.raises(D.DataError, match=rf"{small} is {side + 5}x{side} pixels; .* at least"):
            Pipeline(data, recipe.augment, train=train)
    else:
        Pipeline(data, recipe.augment, train=train)
    kept = D.subset(data, 1)  # the sizes travel with a subset
    assert kept.sizes == tuple(data.sizes[data.files.index(f)] for f in kept.files)


def test_the_torchvision_recipe_evaluates_as_torchvisions_eval_transform():
    """Resize the shorter side to 256, then the center 224: torchvision's ImageNet eval transform
    (its references' ``ClassificationPresetEval``). Without the resize a 300x400 image would be
    center-cropped raw, another picture."""
    from PIL import Image
    from torchvision import transforms

    image = np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    data = D.ArrayData(image[None], np.zeros(1, np.int64), ("a",), "one image")
    ours = Pipeline(data, TORCHVISION.augment, train=False).sample(0, 0)[0]
    theirs = transforms.Compose([
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(TORCHVISION.augment.mean, TORCHVISION.augment.std)])(Image.fromarray(image))
    np.testing.assert_allclose(ours, theirs.numpy().transpose(1, 2, 0), atol=1e-5)
