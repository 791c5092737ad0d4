"""A photo-like fine-tuning dataset, drawn deterministically.

The shapes of the quickstart are flat colours on smooth gradients: easy for
any detector, they do not show how a recipe fine-tunes on photographs.
This set is closer to a user's own data (issue 13's held-out set: a few
dozen large photos, one class, objects about 8 % of the image width):

- backgrounds are crops of the photographs scikit-image ships (textures,
  scenes, microscopy, the Hubble deep field), rescaled, flipped and
  re-coloured, with pasted crops of other photos as unlabelled clutter;
- the one class, ``face``, is the 100 faces of scikit-image's LFW subset
  (real photographs of 100 people, 25 x 25 px): train draws on 70 of them,
  val on the other 30, so val measures what a detector learned of faces,
  not of the faces it saw. They are pasted with a soft elliptical edge at
  5-14 % of the image width (16-45 px at Lite0's 320), tinted, with random
  aspect, rotation, contrast and blur; the subset's 100 non-face crops
  (parts of the same photos, some of faces) are pasted as unlabelled
  clutter beside crops of other photos; val's backgrounds include photos
  that train never shows.
- images are 1024 x 768 JPEGs (decoded and downscaled as a user's photos
  are).

Needs scikit-image (the ``analysis`` extra). The same seed gives the same
files on every machine.
"""

import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

CLASSES = ('face',)
IMAGE_SIZE = (1024, 768)  # width, height
# object width as a fraction of the image width (the held-out photos:
# about 160 px of 2048)
OBJECT_WIDTH = (0.05, 0.14)
# no photo of a person or of faces: an unlabelled face is a missing label
# (the cameraman and the coins, whose reliefs are profile heads, were
# backgrounds until a fine-tuned detector found the coins' heads)
FACE_PHOTOS = ('astronaut', 'camera', 'coins')
BACKGROUNDS = (
    'brick',
    'page',
    'coffee',
    'grass',
    'gravel',
    'hubble_deep_field',
    'rocket',
    'retina',
    'immunohistochemistry',
    'moon',
    'cell',
    'clock',
)
# backgrounds only val shows
VAL_ONLY_BACKGROUNDS = ('coffee', 'retina', 'clock', 'rocket')
CLUTTER = ('chelsea', 'coffee', 'rocket', 'immunohistochemistry')
# scikit-image's lfw_subset: 100 faces, then 100 non-faces
NUM_FACES = 100
NUM_TRAIN_FACES = 70


def _photos(names) -> Dict[str, np.ndarray]:
    """scikit-image's sample photos as BGR uint8 arrays."""
    try:
        import skimage.data
    except ImportError as error:  # pragma: no cover - depends on the env
        raise ImportError(
            "the photo-objects dataset draws on scikit-image's sample "
            "photos: pip install scikit-image (or the package's "
            '[analysis] extra)'
        ) from error
    out = {}
    lfw = (skimage.data.lfw_subset() * 255).astype(np.uint8)
    out['faces'] = np.repeat(lfw[:NUM_FACES, ..., None], 3, axis=3)
    out['non_faces'] = np.repeat(lfw[NUM_FACES:, ..., None], 3, axis=3)
    for name in names:
        img = getattr(skimage.data, name)()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out[name] = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
    return out


def _recolour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random per-channel gain, contrast and brightness."""
    img = img.astype(np.float32)
    img *= rng.uniform(0.7, 1.3, size=3)
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.6, 1.4) + mean + rng.uniform(-40, 40)
    return np.clip(img, 0, 255)


def _crop(
    photo: np.ndarray, rng: np.random.Generator, size: Tuple[int, int]
) -> np.ndarray:
    """A random crop of ``photo`` (30-100 % of its side), resized to
    ``size`` (w, h), maybe flipped."""
    h, w = photo.shape[:2]
    side = rng.uniform(0.3, 1.0)
    ch, cw = max(8, int(h * side)), max(8, int(w * side))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    out = cv2.resize(photo[y : y + ch, x : x + cw], size)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def _paste(
    canvas: np.ndarray,
    patch: np.ndarray,
    x: int,
    y: int,
    angle: float,
    softness: float,
) -> Tuple[int, int, int, int]:
    """Paste ``patch`` rotated by ``angle`` with a soft elliptical edge at
    (x, y) (top left of its unrotated box); return the tight box of the
    visible ellipse (x1, y1, x2, y2)."""
    ph, pw = patch.shape[:2]
    mask = np.zeros((ph, pw), np.float32)
    cv2.ellipse(
        mask, (pw // 2, ph // 2), (pw // 2 - 1, ph // 2 - 1), 0, 0, 360, 1, -1
    )
    k = max(3, int(min(ph, pw) * softness) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    rot = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, 1.0)
    # grow the patch so the rotation is not cut
    cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
    bw, bh = int(pw * cos + ph * sin) + 2, int(pw * sin + ph * cos) + 2
    rot[0, 2] += (bw - pw) / 2
    rot[1, 2] += (bh - ph) / 2
    patch = cv2.warpAffine(patch, rot, (bw, bh))
    mask = cv2.warpAffine(mask, rot, (bw, bh))
    x -= (bw - pw) // 2
    y -= (bh - ph) // 2
    H, W = canvas.shape[:2]
    x1, y1 = max(x, 0), max(y, 0)
    x2, y2 = min(x + bw, W), min(y + bh, H)
    if x2 <= x1 or y2 <= y1:
        return (0, 0, 0, 0)
    m = mask[y1 - y : y2 - y, x1 - x : x2 - x, None]
    region = canvas[y1:y2, x1:x2]
    canvas[y1:y2, x1:x2] = (
        region * (1 - m) + patch[y1 - y : y2 - y, x1 - x : x2 - x] * m
    )
    ys, xs = np.nonzero(m[..., 0] > 0.5)
    if len(xs) == 0:
        return (0, 0, 0, 0)
    return (
        x1 + int(xs.min()),
        y1 + int(ys.min()),
        x1 + int(xs.max()) + 1,
        y1 + int(ys.max()) + 1,
    )


def _overlaps(box, boxes) -> bool:
    for other in boxes:
        iw = min(box[2], other[2]) - max(box[0], other[0])
        ih = min(box[3], other[3]) - max(box[1], other[1])
        if iw > 0 and ih > 0:
            return True
    return False


def draw_image(
    rng: np.random.Generator, photos: Dict[str, np.ndarray], split: str
) -> Tuple[np.ndarray, List[List[float]]]:
    """One image of ``split`` and its face boxes (COCO x, y, w, h)."""
    W, H = IMAGE_SIZE
    backgrounds = [
        b
        for b in BACKGROUNDS
        if split != 'train' or b not in VAL_ONLY_BACKGROUNDS
    ]
    faces = photos['faces']
    faces = (
        faces[:NUM_TRAIN_FACES]
        if split == 'train'
        else faces[NUM_TRAIN_FACES:]
    )
    name = backgrounds[rng.integers(len(backgrounds))]
    canvas = _recolour(_crop(photos[name], rng, (W, H)), rng)
    # clutter: 2-5 crops of other photos or LFW non-faces, of object
    # size, not labelled
    for _ in range(rng.integers(2, 6)):
        if rng.random() < 0.5:
            src = photos['non_faces'][rng.integers(NUM_FACES)]
        else:
            src = photos[CLUTTER[rng.integers(len(CLUTTER))]]
        pw = int(W * rng.uniform(*OBJECT_WIDTH))
        ph = int(pw * rng.uniform(0.8, 1.25))
        patch = _recolour(_crop(src, rng, (pw, ph)), rng)
        _paste(
            canvas,
            patch,
            int(rng.integers(0, W - pw)),
            int(rng.integers(0, H - ph)),
            rng.uniform(-30, 30),
            rng.uniform(0.05, 0.3),
        )
    boxes: List[Tuple[int, int, int, int]] = []
    for _ in range(rng.integers(1, 4)):
        for _attempt in range(20):
            pw = int(W * rng.uniform(*OBJECT_WIDTH))
            ph = int(pw * rng.uniform(0.8, 1.25))
            x = int(rng.integers(0, W - pw))
            y = int(rng.integers(0, H - ph))
            if not _overlaps((x - 8, y - 8, x + pw + 8, y + ph + 8), boxes):
                break
        else:
            continue
        face = faces[rng.integers(len(faces))]
        patch = cv2.resize(face, (pw, ph), interpolation=cv2.INTER_CUBIC)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = _recolour(patch, rng)
        blur = rng.uniform(0, 1.5)
        if blur > 0.3:
            patch = cv2.GaussianBlur(patch, (0, 0), blur)
        box = _paste(
            canvas, patch, x, y, rng.uniform(-20, 20), rng.uniform(0.02, 0.1)
        )
        if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
            boxes.append(box)
    canvas += rng.normal(0, 4, canvas.shape)
    coco = [
        [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
        for b in boxes
    ]
    return np.clip(canvas, 0, 255).astype(np.uint8), coco


def make_split(
    root: str, split: str, num_images: int, seed: int
) -> Dict[str, object]:
    """Draw ``num_images`` into ``root/split/`` and write
    ``root/annotations/split.json``; return the COCO dict."""
    rng = np.random.default_rng(seed)
    photos = _photos(set(BACKGROUNDS) | set(CLUTTER))
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    W, H = IMAGE_SIZE
    for i in range(num_images):
        img, boxes = draw_image(rng, photos, split)
        file_name = f'{i:04d}.jpg'
        cv2.imwrite(
            osp.join(root, split, file_name),
            img,
            [cv2.IMWRITE_JPEG_QUALITY, 90],
        )
        images.append(dict(id=i, file_name=file_name, width=W, height=H))
        for box in boxes:
            annotations.append(
                dict(
                    id=len(annotations),
                    image_id=i,
                    category_id=0,
                    bbox=box,
                    area=box[2] * box[3],
                    iscrowd=0,
                )
            )
    coco = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=i, name=n) for i, n in enumerate(CLASSES)],
    )
    with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def make_photo_objects(
    root: str, num_train: int = 64, num_val: int = 32, seed: int = 0
) -> None:
    """The train and val splits under ``root``."""
    make_split(root, 'train', num_train, seed)
    make_split(root, 'val', num_val, seed + 1)
