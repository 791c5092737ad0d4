"""The photo-objects fine-tuning set: deterministic, valid COCO, loadable
by the checked dataset."""

import json

import cv2
import numpy as np
import pytest

pytest.importorskip('skimage')
# draws 1024x768 images from scikit-image's photos: seconds
pytestmark = pytest.mark.slow

from mmdet_efficientdet.datasets import CheckedCocoDataset  # noqa: E402
from mmdet_efficientdet.datasets.photo_objects import (  # noqa: E402
    BACKGROUNDS,
    CLUTTER,
    FACE_PHOTOS,
    IMAGE_SIZE,
    OBJECT_WIDTH,
    make_photo_objects,
)


@pytest.fixture(scope='module')
def photo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('photo')
    make_photo_objects(str(root), num_train=3, num_val=2, seed=5)
    return root


def test_boxes_inside_images_of_the_stated_size(photo_root):
    W, H = IMAGE_SIZE
    coco = json.loads((photo_root / 'annotations/train.json').read_text())
    assert len(coco['images']) == 3 and coco['annotations']
    for record in coco['images']:
        img = cv2.imread(str(photo_root / 'train' / record['file_name']))
        assert img.shape == (H, W, 3)
        assert (record['width'], record['height']) == (W, H)
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= W and y + h <= H
        # rotated objects' boxes may grow past the drawn width
        assert OBJECT_WIDTH[0] * W * 0.7 <= w <= OBJECT_WIDTH[1] * W * 1.5


def test_no_background_shows_a_face():
    # an unlabelled face in a background is a missing label
    assert not set(FACE_PHOTOS) & (set(BACKGROUNDS) | set(CLUTTER))


def test_same_seed_same_images(photo_root, tmp_path):
    make_photo_objects(str(tmp_path), num_train=3, num_val=2, seed=5)
    for split in ('train', 'val'):
        a = json.loads((photo_root / f'annotations/{split}.json').read_text())
        b = json.loads((tmp_path / f'annotations/{split}.json').read_text())
        assert a == b
    first = cv2.imread(str(tmp_path / 'train/0000.jpg')).astype(int)
    again = cv2.imread(str(photo_root / 'train/0000.jpg')).astype(int)
    assert np.array_equal(first, again)


def test_checked_dataset_loads_it(photo_root):
    dataset = CheckedCocoDataset(
        data_root=str(photo_root),
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        metainfo=dict(classes=('face',)),
        pipeline=[],
    )
    assert len(dataset) == 2
