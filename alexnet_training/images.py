"""Opening photographs the same way for both frameworks, with PIL and numpy only.

Both pipelines start from :func:`open_rgb`, so a mode or size decision is made once. The resize and
crop below reproduce torchvision's ``F.resize`` / ``F.center_crop`` on a PIL image (PIL's bilinear
filter, which antialiases when shrinking, and torchvision's rounding of sizes and offsets), so the
Keras pipeline feeds the network what torchvision's transforms would.

Modes: RGB passes; grayscale (``L``, ``1``), palette (``P``) without transparency, ``CMYK``,
``YCbCr``, ``LAB`` and ``HSV`` are converted to RGB with PIL; an alpha channel is dropped only when
the image is fully opaque; images with transparency and 16-bit / float images (``I``, ``I;16``,
``F``) are refused, because any conversion would be a guess.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from alexnet_spec.imagenet import CROP_SIZE, MEAN, RESIZE_SIZE, STD

CONVERTED_MODES = ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

# The most pixels an image may declare: PIL's own default warning limit (a quarter GiB decoded as
# 24-bit RGB, about 9460x9460). AlexNet reads 224x224 or 32x32, so a larger file is a mistake or a
# decompression bomb (a 420 KB PNG declaring 12000x12000 raised a run's peak memory from 1.49 to
# 2.66 GB). Checked from the header before any pixel is decoded, and refused with the file named,
# where PIL only warns (and raises only above twice the limit).
MAX_PIXELS = 1024 ** 3 // 4 // 3  # 89,478,485


class ImageError(ValueError):
    """An image that cannot be fed to the network; the message says why and what to do."""


def open_rgb(source):
    """A PIL RGB image from a path or a PIL image, after the mode decisions above."""
    from PIL import Image, UnidentifiedImageError

    name = "image"
    if isinstance(source, Image.Image):
        image = source
    else:
        name = str(source)
        path = Path(source)
        if path.is_dir():
            raise ImageError(f"{path} is a directory; expected an image file. Name the image inside it.")
        if not path.is_file():
            raise ImageError(f"no such image file: {path}")
        image = open_header(path)
        try:
            image.load()  # decode now: a truncated file fails here, not later
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise _unreadable(name, err) from err
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ALPHA_MODES:
        alpha = np.asarray(image.getchannel(image.getbands()[-1]))  # "A", or "a" in La / RGBa
        if alpha.min() < 255:
            raise ImageError(
                f"{name} has transparency (mode {mode}, {int((alpha < 255).sum())} pixels not opaque); "
                "the network needs opaque RGB. Flatten it onto a background first, e.g. "
                "Image.alpha_composite(Image.new('RGBA', im.size, 'white'), im).convert('RGB')."
            )
        # Opaque, so premultiplied equals straight alpha; PIL converts La/RGBa only to their
        # straight modes.
        image = image.convert({"La": "LA", "RGBa": "RGBA"}.get(mode, mode)).convert("RGB")
    elif mode in CONVERTED_MODES:
        image = image.convert("RGB")
    elif mode != "RGB":
        raise ImageError(
            f"{name} has mode {mode!r} (16-bit, float or another high-depth format), which has no "
            "unambiguous 8-bit RGB conversion. Convert it to 8-bit RGB yourself (e.g. scale to 0..255 "
            "and save as PNG) and pass that."
        )
    return image


def open_header(path) -> "Image.Image":
    """PIL's lazy open of an image file: its header read, no pixel decoded, refused (with the file
    named, and no PIL warning printed) when it declares more than :data:`MAX_PIXELS` pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the size is checked below, and refused: no raw warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as err:
        raise ImageError(
            f"{path} declares more pixels than PIL opens safely (over {2 * Image.MAX_IMAGE_PIXELS:,}); the "
            f"limit here is {MAX_PIXELS:,} (alexnet_training.images.MAX_PIXELS). It may be a decompression "
            "bomb; a photograph for AlexNet needs far fewer pixels: resize it first."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise _unreadable(path, err) from err
    w, h = image.size
    if w * h > MAX_PIXELS:
        image.close()
        raise ImageError(
            f"{path} declares {w}x{h} = {w * h:,} pixels, more than the limit of {MAX_PIXELS:,} "
            "(alexnet_training.images.MAX_PIXELS). It may be a decompression bomb; a photograph for AlexNet "
            "needs far fewer pixels: resize it first."
        )
    return image


def _unreadable(name, err: BaseException) -> ImageError:
    return ImageError(f"cannot read {name} as an image ({err}). Expected a JPEG, PNG or other format PIL "
                      "reads; the file may be truncated or not an image.")


def open_photo(source, resize: int | None = RESIZE_SIZE):
    """:func:`open_rgb` for a photograph the pipeline resizes first (shorter side to ``resize``;
    ``None``: to a fixed square, as Caffe's), so any size is taken, a 40x40 one too, except what
    the resize cannot work with: no pixels, or a shape so elongated that the resized image would
    exceed :data:`MAX_PIXELS` (a 1x2000 strip would be 256x512000)."""
    from PIL import Image

    image = open_rgb(source)
    name = "the image" if isinstance(source, Image.Image) else str(source)
    w, h = image.size
    if w == 0 or h == 0:
        raise ImageError(f"{name} is {w}x{h} pixels: it holds no pixels to resize. Pass a photograph.")
    if resize is not None:
        new_w, new_h = resized_size(w, h, resize)
        if new_w * new_h > MAX_PIXELS:
            raise ImageError(
                f"{name} is {w}x{h} pixels: resizing its shorter side to {resize} would make it {new_w}x{new_h}, "
                f"over the limit of {MAX_PIXELS:,} pixels (alexnet_training.images.MAX_PIXELS). Crop it to a less "
                "elongated shape first."
            )
    return image


def resized_size(w: int, h: int, size: int) -> tuple[int, int]:
    """(width, height) after torchvision's ``F.resize(img, size)``: the shorter side ``size``, the
    longer one scaled and truncated."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def resize_shorter(image, size: int = RESIZE_SIZE):
    """torchvision's ``F.resize(img, size)`` on a PIL image: shorter side to ``size``, bilinear."""
    from PIL import Image

    new_w, new_h = resized_size(*image.size, size)
    if (new_w, new_h) == image.size:
        return image
    return image.resize((new_w, new_h), Image.BILINEAR)


def center_crop(image, size: int = CROP_SIZE):
    """torchvision's ``F.center_crop`` on a PIL image at least ``size`` on each side."""
    w, h = image.size
    if min(w, h) < size:
        raise ImageError(f"cannot center-crop {size}x{size} from a {w}x{h} image; resize it first")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def load_image(source, *, resize_size: int = RESIZE_SIZE, crop_size: int = CROP_SIZE) -> np.ndarray:
    """The resized, center-cropped image as a float32 HWC array of 0..255 RGB values (any size
    :func:`open_photo` takes: the resize comes first)."""
    image = center_crop(resize_shorter(open_photo(source, resize_size), resize_size), crop_size)
    return np.asarray(image, dtype=np.float32)


def normalize(x, mean=MEAN, std=STD) -> np.ndarray:
    """0..255 RGB (channels last) to torchvision's input: ``(x / 255 - mean) / std`` in float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1:] != (3,):
        raise ValueError(f"expected RGB values on the last axis (..., 3); found shape {x.shape}")
    return ((x / np.float32(255.0) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


# --- Caffe's preprocessing (bvlc_alexnet) ---------------------------------------------------------

# --8<-- [start:caffe]
# Caffe's ImageNet mean per channel, in BGR order (the ilsvrc_2012_mean image averaged; its
# classifier examples use 104, 117, 123).
CAFFE_MEAN_BGR: tuple[float, float, float] = (104.0, 117.0, 123.0)
CAFFE_RESIZE, CAFFE_CROP = 256, 227


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV's ``cv2.resize(..., INTER_LINEAR)`` (what Caffe's convert_imageset used to make the
    256x256 ImageNet) in float32: pixel centres aligned, no antialiasing, edges clamped."""
    x = np.asarray(image, np.float32)

    def taps(n_in: int, n_out: int):
        s = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        s = np.clip(s, 0, n_in - 1)
        i0 = np.floor(s).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (s - i0).astype(np.float32)

    r0, r1, fy = taps(x.shape[0], height)
    c0, c1, fx = taps(x.shape[1], width)
    fy, fx = fy[:, None, None], fx[None, :, None]
    rows = x[r0] * (1 - fy) + x[r1] * fy
    return (rows[:, c0] * (1 - fx) + rows[:, c1] * fx).astype(np.float32)


def caffe_image(source, mean=CAFFE_MEAN_BGR, *, resize: int = CAFFE_RESIZE) -> np.ndarray:
    """The image as Caffe's data layer saw it, before cropping: resized to 256x256 (not keeping
    the aspect ratio), BGR, 0..255, the mean subtracted (HWC float32). ``mean`` is 3 BGR values or a
    mean image (C, H, W) in BGR, e.g. ``alexnet_spec.caffe.read_blob('ilsvrc_2012_mean.binaryproto')``."""
    mean = np.asarray(mean, np.float32)
    if mean.ndim > 1:  # a mean image, (1, 3, H, W) or (3, H, W), BGR
        mean = mean.reshape(mean.shape[-3:]).transpose(1, 2, 0)
        if mean.shape[:2] != (resize, resize):
            mean = resize_bilinear(mean, resize, resize)
    return caffe_normalize(_caffe_resize(source, resize), mean)


def _caffe_resize(source, resize: int = CAFFE_RESIZE) -> np.ndarray:
    return resize_bilinear(np.asarray(open_rgb(source), np.float32), resize, resize)


def _caffe_center(image: np.ndarray, crop: int = CAFFE_CROP) -> np.ndarray:
    """The center ``crop``, offset ``(256 - 227) // 2`` as Caffe's DataTransformer takes it."""
    top, left = (image.shape[0] - crop) // 2, (image.shape[1] - crop) // 2
    return np.ascontiguousarray(image[top:top + crop, left:left + crop])


def caffe_input(source, mean=CAFFE_MEAN_BGR, *, crop: int = CAFFE_CROP) -> np.ndarray:
    """Caffe's test-time input: :func:`caffe_image`, then the center ``crop``, HWC float32."""
    return _caffe_center(caffe_image(source, mean), crop)


def caffe_crop_rgb(source, *, resize: int = CAFFE_RESIZE, crop: int = CAFFE_CROP) -> np.ndarray:
    """Resized to 256x256 and center-cropped like :func:`caffe_input`, but still 0..255 RGB (HWC
    float32): the Keras pipeline's first half, followed by ``preprocess_input(x, mode="caffe")``."""
    return _caffe_center(_caffe_resize(source, resize), crop)


def caffe_normalize(x, mean=CAFFE_MEAN_BGR) -> np.ndarray:
    """0..255 RGB (channels last) to Caffe's input: BGR with the mean (BGR values, or a BGR HWC
    mean image) subtracted."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1:] != (3,):
        raise ValueError(f"expected RGB values on the last axis (..., 3); found shape {x.shape}")
    return (x[..., ::-1] - np.asarray(mean, np.float32)).astype(np.float32)


def caffe_oversample(source, mean=CAFFE_MEAN_BGR, *, crop: int = CAFFE_CROP) -> np.ndarray:
    """Caffe's 10 crops (``caffe.io.oversample``): the four corners and the center, then the same
    five mirrored left to right; (10, crop, crop, 3) float32."""
    image = caffe_image(source, mean)
    h, w = image.shape[:2]
    corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop), ((h - crop) // 2, (w - crop) // 2)]
    crops = [image[t:t + crop, s:s + crop] for t, s in corners]
    return np.ascontiguousarray(np.stack(crops + [c[:, ::-1] for c in crops]))
# --8<-- [end:caffe]
