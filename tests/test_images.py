"""The photo upload pipeline (tickets.images): what is refused, and what a stored photo keeps.

Every bad file is made here, in the test, with Pillow, raw bytes or zlib:
no binary fixtures.
"""

import io
import re
import struct
import zlib

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image, ImageCms, ImageFile
from PIL.PngImagePlugin import PngInfo

from tickets import images
from tickets.models import Attachment, AttachmentKind

# --- Making files ----------------------------------------------------------------------


def encode(img, fmt, **params):
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def upload(data, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def photo(size=(64, 48), color=(200, 60, 30), mode="RGB"):
    return Image.new(mode, size, color)


def noisy_photo(size=(400, 300)):
    """A photo-like image that does not compress to almost nothing."""
    bands = [Image.effect_noise(size, sigma) for sigma in (40, 60, 80)]
    return Image.merge("RGB", bands)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def hand_made_png(width, height, *, idat=None):
    """A black 1-bit greyscale PNG written byte by byte.

    The image data are compressed row by row with a streaming compressor, so
    a 40000 × 40000 canvas (200 MB of raw rows) costs well under a second and
    never more than a few hundred KB of memory.
    """
    if idat is None:
        row = bytes(1 + (width + 7) // 8)  # filter byte "none", then the packed pixels
        compressor = zlib.compressobj(1)
        rows_per_block = 256
        parts = []
        for start in range(0, height, rows_per_block):
            parts.append(compressor.compress(row * min(rows_per_block, height - start)))
        parts.append(compressor.flush())
        idat = b"".join(parts)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def rejection(uploaded_file):
    with pytest.raises(ValidationError) as caught:
        images.process(uploaded_file)
    return caught.value


def decoded(data):
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def is_close(pixel, expected, tolerance=12):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected))


@pytest.fixture
def decodes(monkeypatch):
    """Records every full decode Pillow is asked to do."""
    calls = []
    original = ImageFile.ImageFile.load

    def load(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


@pytest.fixture
def storage_root(settings):
    return settings.PRIVATE_MEDIA_ROOT


def stored_files(root):
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


# --- What a good photo becomes -------------------------------------------------------------


def test_a_jpeg_photo_becomes_a_jpeg_and_a_thumbnail_with_its_size():
    processed = images.process(upload(encode(noisy_photo((400, 300)), "JPEG")))

    assert isinstance(processed, images.ProcessedImage)
    assert (processed.width, processed.height) == (400, 300)
    image, thumbnail = decoded(processed.image_bytes), decoded(processed.thumbnail_bytes)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (400, 300))
    assert thumbnail.format == "JPEG"


def test_processed_image_cannot_be_changed_afterwards():
    processed = images.process(upload(encode(photo(), "PNG"), "photo.png", "image/png"))

    with pytest.raises(AttributeError):
        processed.width = 1


def test_png_is_accepted():
    processed = images.process(upload(encode(photo((30, 20)), "PNG"), "receipt.png", "image/png"))

    assert (processed.width, processed.height) == (30, 20)
    assert decoded(processed.image_bytes).format == "JPEG"


def test_webp_is_accepted():
    processed = images.process(upload(encode(photo((50, 40), (20, 120, 220)), "WEBP"), "card.webp", "image/webp"))

    image = decoded(processed.image_bytes)
    assert image.format == "JPEG"
    assert (processed.width, processed.height) == image.size == (50, 40)
    assert is_close(image.getpixel((25, 20)), (20, 120, 220))


def test_multi_picture_jpeg_as_phones_write_it_is_accepted_with_the_first_picture():
    data = encode(photo((60, 40), (220, 20, 20)), "MPO", save_all=True, append_images=[photo((60, 40), (20, 20, 220))])
    assert Image.open(io.BytesIO(data)).format == "MPO"

    image = decoded(images.process(upload(data)).image_bytes)

    assert is_close(image.getpixel((30, 20)), (220, 20, 20))


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_only_the_first_frame_of_an_animation_is_kept(fmt):
    red, blue = photo((40, 40), (230, 10, 10)), photo((40, 40), (10, 10, 230))
    data = encode(red, fmt, save_all=True, append_images=[blue], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2

    processed = images.process(upload(data, f"anim.{fmt.lower()}", f"image/{fmt.lower()}"))

    image = decoded(processed.image_bytes)
    assert getattr(image, "n_frames", 1) == 1
    assert is_close(image.getpixel((20, 20)), (230, 10, 10))


def test_cmyk_jpeg_is_stored_as_rgb():
    data = encode(photo((30, 30), (0, 0, 0, 0), mode="CMYK"), "JPEG")

    image = decoded(images.process(upload(data)).image_bytes)

    assert image.mode == "RGB"
    assert is_close(image.getpixel((15, 15)), (255, 255, 255))


def test_sixteen_bit_greyscale_png_keeps_its_tones_instead_of_turning_white():
    data = encode(Image.new("I;16", (20, 20), 0x8000), "PNG")

    image = decoded(images.process(upload(data, "scan.png", "image/png")).image_bytes)

    assert is_close(image.getpixel((10, 10)), (128, 128, 128), tolerance=3)


# --- Size, orientation, thumbnail --------------------------------------------------------------


def test_exif_rotated_jpeg_comes_out_upright():
    # Stored 40 wide × 20 high, left half red, right half blue, tagged
    # "rotate 90° clockwise to display" (orientation 6), as a phone held upright writes it.
    sideways = photo((40, 20), (230, 10, 10))
    sideways.paste((10, 10, 230), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6

    processed = images.process(upload(encode(sideways, "JPEG", exif=exif, quality=95)))

    image = decoded(processed.image_bytes)
    assert (processed.width, processed.height) == image.size == (20, 40)
    assert is_close(image.getpixel((10, 5)), (230, 10, 10), tolerance=40)  # the left side is now on top
    assert is_close(image.getpixel((10, 34)), (10, 10, 230), tolerance=40)
    assert ExifTags.Base.Orientation not in image.getexif()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_very_large_image_is_scaled_down_to_the_maximum_side(settings, fmt):
    settings.ATTACHMENT_MAX_SIDE = 100

    processed = images.process(upload(encode(noisy_photo((800, 400)), fmt)))

    assert (processed.width, processed.height) == decoded(processed.image_bytes).size == (100, 50)


def test_small_image_is_not_enlarged():
    processed = images.process(upload(encode(photo((12, 8)), "JPEG")))

    assert decoded(processed.image_bytes).size == (12, 8)
    assert decoded(processed.thumbnail_bytes).size == (12, 8)


@pytest.mark.parametrize(
    ("size", "expected"), [((1000, 600), (320, 192)), ((600, 1000), (192, 320)), ((320, 320), (320, 320))]
)
def test_thumbnail_fits_within_the_thumbnail_side(settings, size, expected):
    assert settings.ATTACHMENT_THUMBNAIL_SIDE == 320

    thumbnail = decoded(images.process(upload(encode(noisy_photo(size), "JPEG"))).thumbnail_bytes)

    assert thumbnail.format == "JPEG"
    assert thumbnail.size == expected


def test_thumbnail_follows_the_setting(settings):
    settings.ATTACHMENT_THUMBNAIL_SIDE = 50

    thumbnail = decoded(images.process(upload(encode(noisy_photo((400, 80)), "JPEG"))).thumbnail_bytes)

    assert thumbnail.size == (50, 10)


# --- Transparency -----------------------------------------------------------------------------


def _transparent(kind):
    if kind == "RGBA":
        return encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), "PNG")
    if kind == "LA":
        return encode(Image.new("LA", (20, 20), (0, 0)), "PNG")
    if kind == "P with a transparent index":
        img = Image.new("P", (20, 20), 0)
        img.putpalette([0, 0, 0, 255, 0, 0])
        return encode(img, "PNG", transparency=0)
    if kind == "RGB with a transparent colour":
        return encode(Image.new("RGB", (20, 20), (0, 0, 0)), "PNG", transparency=(0, 0, 0))
    if kind == "WebP with alpha":
        return encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), "WEBP", lossless=True)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["RGBA", "LA", "P with a transparent index", "RGB with a transparent colour", "WebP with alpha"]
)
def test_transparent_pixels_come_out_white_not_black(kind):
    image = decoded(images.process(upload(_transparent(kind), "logo.png", "image/png")).image_bytes)

    assert image.mode == "RGB"
    assert is_close(image.getpixel((10, 10)), (255, 255, 255), tolerance=2)


def test_half_transparent_pixels_are_blended_onto_white():
    data = encode(Image.new("RGBA", (20, 20), (0, 0, 0, 128)), "PNG")

    image = decoded(images.process(upload(data, "shadow.png", "image/png")).image_bytes)

    assert is_close(image.getpixel((10, 10)), (127, 127, 127), tolerance=4)


# --- No metadata survives ------------------------------------------------------------------------

SECRET_MARKERS = [b"GPS", b"Exif", b"SecretPhone 12", b"taken at home", b"xmpmeta", b"acsp", b"ICC_PROFILE"]
METADATA_KEYS = {"exif", "icc_profile", "comment", "xmp", "XML:com.adobe.xmp", "photoshop", "Author", "Comment"}


def _jpeg_full_of_metadata():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretPhone 12"
    exif[ExifTags.Base.Model] = "SecretPhone 12"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (31.0, 11.0, 42.5),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (121.0, 26.0, 10.2),
        ExifTags.GPS.GPSProcessingMethod: b"ASCII\x00\x00\x00GPS",
    }
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">taken at home</x:xmpmeta>'
    return encode(noisy_photo((120, 90)), "JPEG", exif=exif, icc_profile=icc, comment=b"taken at home", xmp=xmp)


def _stored_copies(ticket, data, by):
    attachment = Attachment.add(ticket, AttachmentKind.DEVICE_PHOTO, images.process(upload(data)), by=by)
    attachment = Attachment.objects.get(pk=attachment.pk)
    copies = {}
    for field in (attachment.image, attachment.thumbnail):
        with field.open("rb") as handle:
            copies[field.field.name] = handle.read()
    return copies


def test_the_test_photo_really_carries_gps_icc_xmp_and_a_comment():
    original = Image.open(io.BytesIO(data := _jpeg_full_of_metadata()))

    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert {"exif", "icc_profile", "comment", "xmp"} <= set(original.info)
    assert all(marker in data for marker in SECRET_MARKERS)


def test_gps_exif_icc_profile_xmp_and_comment_do_not_survive_in_the_stored_copy(ticket, customer):
    copies = _stored_copies(ticket, _jpeg_full_of_metadata(), customer)

    assert set(copies) == {"image", "thumbnail"}
    for name, data in copies.items():
        stored = Image.open(io.BytesIO(data))
        assert stored.format == "JPEG", name
        assert len(stored.getexif()) == 0, name
        assert not stored.getexif().get_ifd(ExifTags.IFD.GPSInfo), name
        assert not METADATA_KEYS & set(stored.info), (name, sorted(stored.info))
        for marker in SECRET_MARKERS:
            assert marker not in data, (name, marker)


def test_png_text_chunks_do_not_survive(ticket, customer):
    text = PngInfo()
    text.add_text("Author", "Secret Person")
    text.add_text("Comment", "home address: 1 Secret Road", zip=True)  # zTXt
    text.add_itxt("Description", "family photo", lang="en", tkey="Description")
    data = encode(photo(), "PNG", pnginfo=text)
    assert {"Author", "Comment", "Description"} <= set(Image.open(io.BytesIO(data)).info)

    for data in _stored_copies(ticket, data, customer).values():
        stored = Image.open(io.BytesIO(data))
        assert not {"Author", "Comment", "Description"} & set(stored.info)
        for marker in (b"Secret Person", b"Secret Road", b"family photo", b"tEXt", b"zTXt", b"iTXt"):
            assert marker not in data


def test_bytes_after_the_jpeg_end_are_not_kept():
    trailer = b"PK\x03\x04 a zip archive hidden after the picture"
    data = encode(noisy_photo((80, 60)), "JPEG") + trailer

    processed = images.process(upload(data))

    for output in (processed.image_bytes, processed.thumbnail_bytes):
        assert b"hidden after the picture" not in output
        assert output.endswith(b"\xff\xd9")  # ends where the JPEG ends


# --- What is refused, and why ----------------------------------------------------------------------


def test_empty_file_is_refused():
    error = rejection(upload(b""))

    assert error.code == "empty"


def test_text_file_is_not_an_image():
    error = rejection(upload(b"Dear service desk,\nmy phone is broken.\n" * 10, "receipt.jpg"))

    assert error.code == "not_image"
    assert "JPEG, PNG or WebP" in " ".join(error.messages)


@pytest.mark.parametrize("max_side", [4096, 64])  # 64: the JPEG is decoded at a reduced scale (draft)
def test_truncated_jpeg_is_refused_as_corrupt(settings, max_side):
    settings.ATTACHMENT_MAX_SIDE = max_side
    data = encode(noisy_photo((400, 300)), "JPEG")
    assert Image.open(io.BytesIO(data[: len(data) // 2])).size == (400, 300)  # the header alone looks fine

    error = rejection(upload(data[: len(data) // 2]))

    assert error.code == "corrupt"


def test_truncated_png_is_refused_as_corrupt():
    data = encode(noisy_photo((200, 150)), "PNG")

    assert rejection(upload(data[: len(data) // 2], "photo.png")).code == "corrupt"


def test_png_with_damaged_image_data_is_refused_as_corrupt():
    data = hand_made_png(100, 100, idat=b"\x78\x9c" + b"\xff" * 200)  # a zlib header, then garbage

    assert rejection(upload(data, "photo.png")).code == "corrupt"


def test_gif_is_refused_and_the_message_says_which_formats_are_allowed():
    data = encode(photo(mode="RGB"), "GIF")

    error = rejection(upload(data, "photo.gif", "image/gif"))

    assert error.code == "format"
    message = " ".join(error.messages)
    assert "GIF" in message
    assert "JPEG, PNG or WebP" in message


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "PPM"])
def test_other_image_formats_are_refused(fmt):
    assert rejection(upload(encode(photo((32, 32)), fmt))).code == "format"


def test_format_is_decided_by_the_content_not_the_name_or_content_type():
    gif_called_jpeg = upload(encode(photo(), "GIF"), "photo.jpg", "image/jpeg")
    png_called_gif = upload(encode(photo(), "PNG"), "photo.gif", "image/gif")

    assert rejection(gif_called_jpeg).code == "format"
    assert decoded(images.process(png_called_gif).image_bytes).format == "JPEG"


def test_oversized_file_is_refused_with_the_limit_in_the_message(settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    data = encode(noisy_photo((200, 200)), "JPEG")
    assert len(data) > 1000

    error = rejection(upload(data))

    assert error.code == "too_large"
    assert "1000\xa0bytes" in " ".join(error.messages)


def test_size_is_checked_before_anything_is_read(settings):
    settings.ATTACHMENT_MAX_BYTES = 1000

    class SizeOnly:
        """An upload that only tells its size: any attempt to read it fails the test."""

        size = 1001
        name = "huge.jpg"

        def read(self, *args):
            pytest.fail("the upload was read before its size was checked")

        seek = tell = chunks = open = read

    assert rejection(SizeOnly()).code == "too_large"


def test_file_exactly_at_the_size_limit_is_accepted(settings):
    data = encode(photo(), "JPEG")
    settings.ATTACHMENT_MAX_BYTES = len(data)

    assert images.process(upload(data)).width == 64


def test_upload_whose_size_lies_is_not_read_past_the_limit(settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    data = encode(noisy_photo((200, 200)), "JPEG")
    lying = File(io.BytesIO(data), name="photo.jpg")
    lying.size = 10

    assert rejection(lying).code == "too_large"


def test_an_accepted_photo_is_fully_decoded(decodes):
    # The other side of "refused before decoding": the spy does see real decodes.
    images.process(upload(hand_made_png(300, 200), "small.png", "image/png"))

    assert (300, 200) in decodes


def test_decompression_bomb_is_refused_before_decoding(decodes):
    bomb = hand_made_png(40_000, 40_000)  # 1.6 gigapixels; 200 MB of rows once inflated
    assert len(bomb) < 1_000_000

    error = rejection(upload(bomb, "bomb.png", "image/png"))

    assert error.code == "too_many_pixels"
    assert decodes == []


def test_pixel_limit_is_the_apps_own_even_where_pillow_would_not_warn(settings, decodes):
    assert settings.ATTACHMENT_MAX_PIXELS == 50_000_000
    data = hand_made_png(8000, 8000)  # 64 megapixels: more than ours, less than Pillow's warning
    assert 8000 * 8000 < Image.MAX_IMAGE_PIXELS

    error = rejection(upload(data, "big.png", "image/png"))

    assert error.code == "too_many_pixels"
    assert "50 megapixels" in " ".join(error.messages)
    assert decodes == []


def test_pillows_bomb_warning_is_an_error_even_if_the_app_limit_were_higher(settings, decodes):
    settings.ATTACHMENT_MAX_PIXELS = 500_000_000
    data = hand_made_png(10_000, 10_000)  # 100 megapixels: Pillow warns, but does not refuse
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000 < 2 * Image.MAX_IMAGE_PIXELS

    assert rejection(upload(data, "big.png", "image/png")).code == "too_many_pixels"
    assert decodes == []


def test_pixel_limit_counts_width_times_height(settings):
    settings.ATTACHMENT_MAX_PIXELS = 100 * 50

    assert images.process(upload(encode(photo((100, 50)), "PNG"), "a.png")).width == 100
    assert rejection(upload(encode(photo((101, 50)), "PNG"), "b.png")).code == "too_many_pixels"


# --- Storage ------------------------------------------------------------------------------------------


def _truncated_jpeg():
    data = encode(noisy_photo((200, 150)), "JPEG")
    return data[: len(data) // 2]


BAD_UPLOADS = {
    "not_image": lambda: b"just some text",
    "corrupt": _truncated_jpeg,
    "format": lambda: encode(photo(), "GIF"),
    "too_many_pixels": lambda: hand_made_png(40_000, 40_000),
}


@pytest.mark.parametrize("code", list(BAD_UPLOADS))
def test_failing_upload_stores_nothing(ticket, customer, storage_root, code):
    with pytest.raises(ValidationError) as caught:
        Attachment.add(ticket, AttachmentKind.RECEIPT, images.process(upload(BAD_UPLOADS[code]())), by=customer)

    assert caught.value.code == code
    assert stored_files(storage_root) == []
    assert not Attachment.objects.exists()


def test_accepted_upload_is_stored_under_a_name_the_server_chose(ticket, customer, storage_root):
    data = encode(photo(), "PNG")
    processed = images.process(upload(data, "../../etc/evil name.php", "image/png"))

    attachment = Attachment.add(ticket, AttachmentKind.WARRANTY_CARD, processed, by=customer)

    for field in (attachment.image, attachment.thumbnail):
        assert re.fullmatch(r"attachments/\d{4}/\d{2}/[0-9a-f]{32}\.jpg", field.name)
    assert len(stored_files(storage_root)) == 2
    assert attachment.byte_size == len(processed.image_bytes)
    assert (attachment.width, attachment.height) == (processed.width, processed.height)


# --- The form-field validator -------------------------------------------------------------------------


class PhotoForm(forms.Form):
    photo = forms.FileField(validators=[images.validate_form_file])


def test_form_validator_keeps_the_processed_image_for_the_view():
    form = PhotoForm(files={"photo": upload(encode(photo((30, 20)), "JPEG"))})

    assert form.is_valid(), form.errors
    processed = form.cleaned_data["photo"].processed_image
    assert (processed.width, processed.height) == (30, 20)


def test_form_validator_shows_why_the_photo_was_refused():
    form = PhotoForm(files={"photo": upload(encode(photo(), "GIF"), "photo.gif")})

    assert not form.is_valid()
    assert form.has_error("photo", code="format")
    assert "JPEG, PNG or WebP" in form.errors["photo"][0]


def test_a_lossless_image_decoded_at_full_size_has_a_lower_pixel_limit(settings):
    """PNG and WebP cannot be decoded scaled down like JPEG: a small file must not demand a huge decode."""
    settings.ATTACHMENT_MAX_PIXELS_FULL_DECODE = 100 * 50
    assert rejection(upload(encode(photo((101, 50)), "PNG"), "b.png")).code == "too_many_pixels"
    assert rejection(upload(encode(photo((101, 50)), "WEBP"), "b.webp")).code == "too_many_pixels"
    assert images.process(upload(encode(photo((101, 50)), "JPEG"), "b.jpg")).width == 101


def test_only_the_allowed_formats_parsers_read_an_upload(monkeypatch):
    from PIL import BmpImagePlugin

    def tripwire(*args, **kwargs):
        raise AssertionError("the BMP parser was run on an upload")

    monkeypatch.setattr(BmpImagePlugin.BmpImageFile, "_open", tripwire)
    assert rejection(upload(encode(photo((32, 32)), "BMP"))).code == "format"
