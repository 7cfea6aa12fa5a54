"""The photo upload pipeline: validate, clean and shrink what customers upload.

``process(uploaded_file)`` either returns a ``ProcessedImage`` (a clean JPEG
and its thumbnail, ready for ``Attachment.add``) or raises a
``ValidationError`` whose message tells the uploader why, with one of these
codes: ``empty``, ``too_large``, ``not_image``, ``format``,
``too_many_pixels``, ``corrupt``. It never touches storage, so a rejected
upload leaves nothing behind.

The steps, in order, and why:

1. **Byte size**, from ``.size``, before a single byte is read: an oversized
   upload costs nothing more. At most the limit plus one byte is then read,
   so a file whose ``.size`` lies cannot make us read more.
2. **Open** with Pillow, which parses the header only. What the file *is*
   decides, never its name or the content type the browser sent.
3. **Format allow-list**: JPEG (MPO, the multi-picture JPEG some phones
   write, included), PNG and WebP. GIF, TIFF, BMP, PSD… are refused with a
   message saying what is allowed.
4. **Pixel limit** (``ATTACHMENT_MAX_PIXELS``) from the header, before
   decoding: a small file can claim a huge canvas (a "decompression bomb").
   Pillow only warns up to twice its own ``MAX_IMAGE_PIXELS``; we enforce a
   lower limit ourselves and turn Pillow's warning into an error too.
5. **Full decode** (``load()``): a truncated or damaged file fails here
   rather than later in a thumbnail or in a technician's browser. Only the
   first frame of an animated WebP/PNG (or MPO) is decoded and kept. Large
   JPEGs are decoded at a reduced scale (``draft``) when that still leaves
   at least ``ATTACHMENT_MAX_SIDE``, which saves memory.
6. **Orientation**: phones store photos sideways with an EXIF "rotate me"
   tag; ``exif_transpose`` turns the pixels upright, because the tag itself
   is about to be dropped with the rest of the metadata.
7. **Shrink** to ``ATTACHMENT_MAX_SIDE`` on the longest side (never enlarged).
8. **Fresh image**: the pixels are pasted onto a new white RGB canvas. The
   new image carries no ``info`` at all, so nothing can leak into the JPEG
   (Pillow's JPEG encoder would otherwise copy e.g. a comment from the
   source's ``info``): no EXIF, GPS, ICC profile, XMP, comments, PNG text
   chunks, nor bytes after the image end. Transparent pixels become white,
   not the black a plain ``convert("RGB")`` would give.
9. **Encode** as JPEG, and a JPEG thumbnail of at most
   ``ATTACHMENT_THUMBNAIL_SIDE`` on the longest side.

``warnings.catch_warnings`` changes process-wide state and is not
thread-safe before Python 3.14; at worst another thread briefly sees Pillow's
bomb warning as an error, and our own pixel limit (below Pillow's) is checked
regardless.
"""

import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps

# Pillow's format names, as found by decoding. MPO is how Pillow names a JPEG
# that carries extra pictures (depth maps, previews) in the way phones write them.
ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
# The parsers allowed to read an upload at all (the JPEG one also yields MPO).
OPEN_FORMATS = ("JPEG", "PNG", "WEBP")
# Lossless formats cannot be decoded at a reduced scale the way JPEG can, so a
# small file can demand a large decode: they get a lower pixel limit.
FULL_DECODE_FORMATS = frozenset({"PNG", "WEBP"})

# Recognised only to say "this format is not accepted": these are never parsed.
_OTHER_FORMATS = (
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
    (b"P1", "PBM"), (b"P2", "PGM"), (b"P3", "PPM"), (b"P4", "PBM"), (b"P5", "PGM"), (b"P6", "PPM"),
)
JPEG_QUALITY = 85
THUMBNAIL_QUALITY = 80

MESSAGES = {
    "empty": _("The file is empty. Choose a photo to upload."),
    "too_large": _("The file is too large (%(size)s). Upload a photo of at most %(limit)s."),
    "not_image": _("This file is not an image we can read. Upload a JPEG, PNG or WebP photo."),
    "format": _("%(format)s images are not accepted. Upload a JPEG, PNG or WebP photo."),
    "too_many_pixels": _(
        "The image has too many pixels. Upload a photo of at most %(megapixels)s megapixels."
    ),
    "corrupt": _("The image is damaged or incomplete. Take the photo again or upload another copy."),
}


@dataclass(frozen=True)
class ProcessedImage:
    image_bytes: bytes
    thumbnail_bytes: bytes
    width: int
    height: int


def _reject(code, **params):
    return ValidationError(MESSAGES[code], code=code, params=params or None)


def _too_many_pixels():
    return _reject("too_many_pixels", megapixels=f"{settings.ATTACHMENT_MAX_PIXELS / 1_000_000:g}")


def _other_format(data):
    """The name of a known image format we do not accept, from its first bytes; else None."""
    if data[:4] == b"RIFF" and data[8:12] != b"WEBP":
        return None
    for magic, name in _OTHER_FORMATS:
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF"
    return None


def _fit(size, longest):
    """``size`` scaled down (never up) so that its longest side is at most ``longest``."""
    scale = min(1, longest / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _read_limited(uploaded_file):
    max_bytes = settings.ATTACHMENT_MAX_BYTES
    if uploaded_file.size == 0:
        raise _reject("empty")
    if uploaded_file.size > max_bytes:
        raise _reject("too_large", size=filesizeformat(uploaded_file.size), limit=filesizeformat(max_bytes))
    uploaded_file.seek(0)
    data = uploaded_file.read(max_bytes + 1)
    if not data:
        raise _reject("empty")
    if len(data) > max_bytes:
        raise _reject("too_large", size=filesizeformat(len(data)), limit=filesizeformat(max_bytes))
    return data


def _decode(data):
    """Steps 2–6: the upright, fully decoded first frame, or a ValidationError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Only the allowed formats' parsers ever see the bytes.
            img = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except Image.UnidentifiedImageError:
            other = _other_format(data)
            if other:
                raise _reject("format", format=other) from None
            raise _reject("not_image") from None
        except Exception:
            raise _reject("corrupt") from None
        if img.format not in ALLOWED_FORMATS:
            raise _reject("format", format=img.format)
        width, height = img.size
        if width * height > settings.ATTACHMENT_MAX_PIXELS:
            raise _too_many_pixels()
        if img.format in FULL_DECODE_FORMATS and width * height > settings.ATTACHMENT_MAX_PIXELS_FULL_DECODE:
            raise _reject(
                "too_many_pixels", megapixels=f"{settings.ATTACHMENT_MAX_PIXELS_FULL_DECODE / 1_000_000:g}"
            )
        try:
            if img.format in ("JPEG", "MPO"):
                img.draft("RGB", _fit(img.size, settings.ATTACHMENT_MAX_SIDE))
            img.load()
            return ImageOps.exif_transpose(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except Exception:
            # Pillow raises OSError, SyntaxError, ValueError, EOFError, struct.error…
            # for damaged data; to the uploader they all mean the same thing.
            raise _reject("corrupt") from None


def _flatten(img):
    """Step 8: the pixels alone, on a fresh white RGB canvas with no metadata."""
    if img.mode.startswith("I"):  # 16-bit greyscale PNG: to 8 bits, not clipped to white
        img = img.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    img.thumbnail((settings.ATTACHMENT_MAX_SIDE,) * 2, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", img.size, "white")
    canvas.paste(img, mask=img.getchannel("A") if img.mode == "RGBA" else None)
    return canvas


def _jpeg(img, quality):
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def process(uploaded_file):
    """Validate an uploaded photo and return a clean JPEG and thumbnail (see the module docstring)."""
    clean = _flatten(_decode(_read_limited(uploaded_file)))
    thumbnail = clean.copy()
    thumbnail.thumbnail((settings.ATTACHMENT_THUMBNAIL_SIDE,) * 2, Image.Resampling.LANCZOS)
    return ProcessedImage(
        image_bytes=_jpeg(clean, JPEG_QUALITY),
        thumbnail_bytes=_jpeg(thumbnail, THUMBNAIL_QUALITY),
        width=clean.width,
        height=clean.height,
    )


def validate_form_file(uploaded_file):
    """A form-field validator: ``FileField(validators=[images.validate_form_file])``.

    The result is kept on the file as ``processed_image`` so that the view can
    pass it to ``Attachment.add`` without decoding the photo a second time.
    """
    uploaded_file.processed_image = process(uploaded_file)
