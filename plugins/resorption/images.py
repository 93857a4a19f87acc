"""Photos without their metadata: images re-encoded from their pixels alone.

A photo taken on a site carries, in its EXIF block, the GPS position where it was taken,
the camera, the date, sometimes the owner's name; XMP and comments may say more. The
positions of people living in a slum must not leak through a photo, so an attached image is
decoded and written again from its pixels: nothing of the original file but the picture
goes through (no EXIF, XMP, IPTC, ICC profile, comment or text chunk), the EXIF orientation
being applied to the pixels first so that the photo stays upright.

Decompression bombs: the header's dimensions are checked against
`Limits.attachment_max_pixels` before anything is decoded (a 50 KB PNG may announce
100,000 × 100,000 pixels, 30 GB of memory); Pillow's own guard (`Image.MAX_IMAGE_PIXELS`)
is set to the same value, and its warning is an error here. The decoder is the one of the
type detected from the content (`formats=`), never one Pillow would guess.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from resorption.errors import InvalidParameter, PayloadTooLarge
from resorption.file_types import JPEG, PNG, WEBP, FileType
from resorption.settings import Limits, french_count

PILLOW_FORMATS = {PNG.media_type: "PNG", JPEG.media_type: "JPEG", WEBP.media_type: "WEBP"}
JPEG_QUALITY = 90
WEBP_QUALITY = 90


def without_metadata(data: bytes, kind: FileType, limits: Limits) -> bytes:
    """The image `data` (of type `kind`) re-encoded from its pixels, in the same format."""
    pillow_format = PILLOW_FORMATS[kind.media_type]
    Image.MAX_IMAGE_PIXELS = limits.attachment_max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as original:
                width, height = original.size
                if width * height > limits.attachment_max_pixels:
                    raise _too_many_pixels(width, height, limits)
                original.seek(0)  # an animation keeps its first image
                # In place: one decoded copy of the pixels in memory, not two.
                ImageOps.exif_transpose(original, in_place=True)
                return _encode(original, pillow_format)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(0, 0, limits) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            raise InvalidParameter(
                f"Fichier refusé : {kind.label} illisible ou tronquée (son contenu ne se décode pas)."
            ) from None


def _encode(image: Image.Image, pillow_format: str) -> bytes:
    """Write the pixels of `image` alone (its `info`, where metadata lives, is left behind)."""
    image.load()
    if pillow_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if pillow_format == "WEBP" and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    options: dict[str, object] = {}
    if pillow_format == "PNG" and "transparency" in image.info:
        options["transparency"] = image.info["transparency"]  # part of the picture, not metadata
    image.info = {}  # where EXIF, XMP, ICC and comments live
    out = io.BytesIO()
    if pillow_format == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, exif=b"", icc_profile=None)
    elif pillow_format == "WEBP":
        image.save(out, "WEBP", quality=WEBP_QUALITY, exif=b"", xmp=b"", icc_profile=None)
    else:
        image.save(out, "PNG", **options)
    return out.getvalue()


def _too_many_pixels(width: int, height: int, limits: Limits) -> PayloadTooLarge:
    said = f" ({french_count(width)} × {french_count(height)})" if width and height else ""
    return PayloadTooLarge(
        f"Image refusée : elle compte trop de pixels{said} ; "
        f"{french_count(limits.attachment_max_pixels)} au plus. Réduisez sa taille avant de l'envoyer."
    )
