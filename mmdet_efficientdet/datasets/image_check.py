"""Cheap up-front checks that an image file will load, and its size.

mmcv's loader finds an unreadable image only when the data loader reaches
it (``AssertionError: failed to load image``, mid-epoch). Decoding every
image up front would cost as much as an epoch of data loading; these
checks read a few kilobytes per file instead:

- the header, parsed by PIL (``Image.open`` reads only the first bytes):
  catches files that are not images at all (a text file named ``.png``,
  an empty file, an HTML error page saved as ``.jpg``) and gives the
  stored size and the EXIF orientation;
- the last 4 KiB: a JPEG must hold its end-of-image marker and a PNG its
  final ``IEND`` chunk there, which catches files cut short (an interrupted
  download or copy). OpenCV refuses such files outright (measured with
  OpenCV 5.1: a JPEG or PNG short of even its last 4 bytes decodes to
  ``None``). Searching the tail, not only its last bytes, accepts padding
  after the marker.

Not caught: bytes corrupted in the middle of a complete file (only a full
decode finds those). A file PIL cannot identify is decoded by OpenCV, the
loader's default backend, before it is called unreadable.
"""

import os
from typing import NamedTuple, Optional, Tuple

import cv2
from PIL import Image

# end markers that a complete file holds in its last bytes
JPEG_END = b'\xff\xd9'  # EOI marker
PNG_END = b'IEND\xaeB`\x82'  # IEND chunk type and its CRC
END_MARKERS = {'JPEG': JPEG_END, 'MPO': JPEG_END, 'PNG': PNG_END}
TAIL_BYTES = 4096
# EXIF orientations 5-8 turn the stored image by 90 degrees; mmcv's cv2
# and pillow backends both apply them when loading
EXIF_ORIENTATION = 0x0112
TRANSPOSED = (5, 6, 7, 8)


class ImageFileError(ValueError):
    """Image files that exist but cannot be loaded."""


class ImageInfo(NamedTuple):
    """What :func:`inspect_image` found.

    ``size`` is (width, height) as the loader will see it (EXIF
    orientation applied), None when the file is unreadable; ``stored`` is
    the size in the file's header; ``problem`` says why it is unreadable.
    """

    size: Optional[Tuple[int, int]]
    stored: Optional[Tuple[int, int]] = None
    problem: Optional[str] = None


def _has_end_marker(path: str, marker: bytes) -> bool:
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - TAIL_BYTES))
        return marker in f.read()


def _decode_with_opencv(path: str, reason: str) -> ImageInfo:
    """Full decode: only for the rare file that PIL cannot identify."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        return ImageInfo(None, problem=f'not a readable image ({reason})')
    height, width = img.shape[:2]
    return ImageInfo((width, height), stored=(width, height))


def inspect_image(path: str) -> ImageInfo:
    """Header and end-marker check of one image file (see module doc)."""
    try:
        with Image.open(path) as img:
            fmt = img.format
            stored = img.size
            # PIL looks for a PNG's eXIf chunk after the pixel data by
            # decoding the whole image; one before the pixels (where the
            # PNG spec puts it) is read with the header
            if fmt == 'PNG' and 'exif' not in img.info:
                orientation = 1
            else:
                orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    except Image.UnidentifiedImageError as err:
        return _decode_with_opencv(path, str(err))
    except (OSError, SyntaxError, ValueError) as err:
        # a header PIL recognises but cannot parse
        kind = os.path.splitext(path)[1].lstrip('.').upper()
        return ImageInfo(
            None, problem=f'truncated or corrupt {kind} header ({err})'
        )
    marker = END_MARKERS.get(fmt)
    if marker is not None and not _has_end_marker(path, marker):
        return ImageInfo(
            None, stored, f'truncated {fmt}: no end marker in its last bytes'
        )
    size = (stored[1], stored[0]) if orientation in TRANSPOSED else stored
    return ImageInfo(size, stored)
