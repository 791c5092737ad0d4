"""A small COCO-format detection dataset drawn deterministically.

The default data of the quickstart: coloured circles, rectangles and
triangles of varied size and count on noisy backgrounds, split into train
and val. The same seed gives the same files on every machine, so results
are comparable without shipping images in the repo.
"""

import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

CLASSES = ('circle', 'rectangle', 'triangle')


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour gradient with pixel noise."""
    corners = rng.integers(0, 256, size=(2, 2, 3)).astype(np.float32)
    img = cv2.resize(corners, (size, size), interpolation=cv2.INTER_LINEAR)
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw(
    img: np.ndarray,
    rng: np.random.Generator,
    label: int,
    box: Tuple[int, int, int, int],
) -> List[float]:
    """Draw one shape filling ``box`` (x1, y1, x2, y2); return its bbox."""
    x1, y1, x2, y2 = box
    color = tuple(int(c) for c in rng.integers(0, 256, size=3))
    if CLASSES[label] == 'circle':
        center = ((x1 + x2) // 2, (y1 + y2) // 2)
        axes = ((x2 - x1) // 2, (y2 - y1) // 2)
        cv2.ellipse(img, center, axes, 0, 0, 360, color, -1)
        x1, y1 = center[0] - axes[0], center[1] - axes[1]
        x2, y2 = center[0] + axes[0], center[1] + axes[1]
    elif CLASSES[label] == 'rectangle':
        cv2.rectangle(img, (x1, y1), (x2, y2), color, -1)
    else:
        apex = int(rng.integers(x1, x2 + 1))
        pts = np.array([[apex, y1], [x1, y2], [x2, y2]], np.int32)
        cv2.fillPoly(img, [pts], color)
    return [float(x1), float(y1), float(x2 - x1 + 1), float(y2 - y1 + 1)]


def _overlap(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over the smaller box: how hidden the smaller one is."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller if smaller else 0.0


def make_split(
    out_dir: str,
    split: str,
    num_images: int,
    seed: int,
    image_size: int = 256,
    max_objects: int = 6,
) -> str:
    """Write ``out_dir/split/*.png`` and ``out_dir/annotations/split.json``.

    Objects are 10% to 50% of the image side, at most ``max_objects`` per
    image, none hiding more than 15% of another.

    Returns:
        The annotation file path.
    """
    rng = np.random.default_rng(seed)
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    images: List[Dict] = []
    annotations: List[Dict] = []
    for img_id in range(1, num_images + 1):
        img = _background(rng, image_size)
        boxes: List[Tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            for _attempt in range(20):
                side = rng.uniform(0.1, 0.5) * image_size
                aspect = rng.uniform(0.6, 1.6)
                w = int(max(8, side * np.sqrt(aspect)))
                h = int(max(8, side / np.sqrt(aspect)))
                w, h = min(w, image_size - 2), min(h, image_size - 2)
                x1 = int(rng.integers(0, image_size - w))
                y1 = int(rng.integers(0, image_size - h))
                box = (x1, y1, x1 + w - 1, y1 + h - 1)
                if all(_overlap(box, b) < 0.15 for b in boxes):
                    break
            else:
                continue
            boxes.append(box)
            label = int(rng.integers(len(CLASSES)))
            bbox = _draw(img, rng, label, box)
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=label + 1,
                    bbox=bbox,
                    area=bbox[2] * bbox[3],
                    iscrowd=0,
                )
            )
        name = f'{img_id:05d}.png'
        cv2.imwrite(osp.join(img_dir, name), img)
        images.append(
            dict(
                id=img_id, file_name=name, width=image_size, height=image_size
            )
        )
    coco = dict(
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)
        ],
    )
    ann_file = osp.join(out_dir, 'annotations', f'{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return ann_file


def make_shapes_dataset(
    out_dir: str,
    num_train: int = 400,
    num_val: int = 100,
    image_size: int = 256,
    seed: int = 0,
) -> Dict[str, str]:
    """Write the train and val splits; return their annotation files."""
    return dict(
        train=make_split(out_dir, 'train', num_train, seed, image_size),
        val=make_split(out_dir, 'val', num_val, seed + 1, image_size),
    )
