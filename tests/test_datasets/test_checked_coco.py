"""CheckedCocoDataset: bad annotations fail early or are skipped loudly."""

import json
import logging

import cv2
import mmcv
import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

from mmdet_efficientdet.datasets import (
    AnnotationError,
    CheckedCocoDataset,
    ImageFileError,
    checked_coco,
)

CLASSES = ('circle', 'square')


def write_coco(root, images=None, annotations=None, categories=None):
    """Two 64x64 images with one box each, then the edits of a test."""
    (root / 'img').mkdir(exist_ok=True)
    images = (
        images
        if images is not None
        else [
            dict(id=1, file_name='a.png', width=64, height=64),
            dict(id=2, file_name='b.png', width=64, height=64),
        ]
    )
    for img in images:
        cv2.imwrite(
            str(root / 'img' / img['file_name']),
            np.zeros((img['height'], img['width'], 3), np.uint8),
        )
    annotations = (
        annotations
        if annotations is not None
        else [
            dict(
                id=1,
                image_id=1,
                category_id=1,
                bbox=[4, 4, 20, 20],
                area=400,
                iscrowd=0,
            ),
            dict(
                id=2,
                image_id=2,
                category_id=2,
                bbox=[8, 8, 30, 10],
                area=300,
                iscrowd=0,
            ),
        ]
    )
    categories = categories or [
        dict(id=1, name='circle'),
        dict(id=2, name='square'),
    ]
    path = root / 'ann.json'
    path.write_text(
        json.dumps(
            dict(images=images, annotations=annotations, categories=categories)
        )
    )
    return path


def build(root, path, **kwargs):
    kwargs.setdefault('filter_cfg', dict(filter_empty_gt=True, min_size=32))
    return CheckedCocoDataset(
        ann_file=str(path),
        data_root=str(root),
        data_prefix=dict(img='img/'),
        metainfo=dict(classes=CLASSES),
        pipeline=[],
        **kwargs,
    )


class Collected(logging.Handler):
    """Messages logged through mmengine's current logger."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    @property
    def text(self):
        return '\n'.join(self.messages)


@pytest.fixture
def warnings():
    # print_log(logger='current') writes to the latest MMLogger instance,
    # whichever stream earlier tests left it on
    logger = MMLogger.get_current_instance()
    handler = Collected()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_good_file(tmp_path):
    dataset = build(tmp_path, write_coco(tmp_path))
    assert len(dataset) == 2
    assert [len(d['instances']) for d in dataset] == [1, 1]


def test_corrupt_json(tmp_path):
    path = write_coco(tmp_path)
    path.write_text(path.read_text()[:-30])
    with pytest.raises(AnnotationError, match=r'not valid JSON.*line 1'):
        build(tmp_path, path)


def test_json_without_annotations_list(tmp_path):
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(dict(images=[], categories=[])))
    with pytest.raises(AnnotationError, match="no 'annotations' list"):
        build(tmp_path, path)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.json'):
        build(tmp_path, tmp_path / 'nothere.json')


def test_missing_image_file(tmp_path):
    path = write_coco(tmp_path)
    (tmp_path / 'img' / 'b.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'1 of 2 image files.*b\.png'):
        build(tmp_path, path)


def test_image_without_boxes_is_a_logged_skip(tmp_path, warnings):
    annotations = [
        dict(
            id=1,
            image_id=1,
            category_id=1,
            bbox=[4, 4, 20, 20],
            area=400,
            iscrowd=0,
        )
    ]
    dataset = build(tmp_path, write_coco(tmp_path, annotations=annotations))
    assert len(dataset) == 1
    assert 'skipped images: 1 without usable boxes' in warnings.text


def test_every_image_skipped_is_an_error(tmp_path):
    with pytest.raises(AnnotationError, match='no image left'):
        build(tmp_path, write_coco(tmp_path, annotations=[]))


def test_zero_width_box_is_a_logged_skip(tmp_path, warnings):
    annotations = [
        dict(
            id=1,
            image_id=1,
            category_id=1,
            bbox=[4, 4, 20, 20],
            area=400,
            iscrowd=0,
        ),
        dict(
            id=2,
            image_id=2,
            category_id=2,
            bbox=[8, 8, 0, 10],
            area=0,
            iscrowd=0,
        ),
        dict(
            id=3,
            image_id=2,
            category_id=2,
            bbox=[8, 8, 30, 10],
            area=300,
            iscrowd=0,
        ),
    ]
    dataset = build(tmp_path, write_coco(tmp_path, annotations=annotations))
    assert [len(d['instances']) for d in dataset] == [1, 1]
    assert 'skipping 1 boxes narrower or lower than 1 px' in warnings.text
    assert 'annotation id 2' in warnings.text


def test_undeclared_category(tmp_path):
    annotations = [
        dict(
            id=7,
            image_id=1,
            category_id=5,
            bbox=[4, 4, 20, 20],
            area=400,
            iscrowd=0,
        )
    ]
    with pytest.raises(
        AnnotationError, match=r'annotation id 7 .*category_id 5'
    ):
        build(tmp_path, write_coco(tmp_path, annotations=annotations))


def test_class_missing_from_categories(tmp_path):
    path = write_coco(
        tmp_path, categories=[dict(id=1, name='circle')], annotations=[]
    )
    with pytest.raises(AnnotationError, match=r"\['square'\]"):
        build(tmp_path, path)


def test_malformed_bbox(tmp_path):
    annotations = [
        dict(
            id=3,
            image_id=1,
            category_id=1,
            bbox=[4, 4, 20],
            area=400,
            iscrowd=0,
        )
    ]
    with pytest.raises(AnnotationError, match=r'annotation id 3.*\[x, y'):
        build(tmp_path, write_coco(tmp_path, annotations=annotations))


def test_image_smaller_than_largest_stride_is_a_logged_skip(
    tmp_path, warnings
):
    images = [
        dict(id=1, file_name='a.png', width=64, height=64),
        dict(id=2, file_name='b.png', width=100, height=20),
    ]
    dataset = build(
        tmp_path,
        write_coco(tmp_path, images=images),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
    )
    assert len(dataset) == 1
    assert 'skipped images: 1 smaller than 32 px' in warnings.text


def test_test_mode_keeps_every_image(tmp_path):
    dataset = build(
        tmp_path, write_coco(tmp_path, annotations=[]), test_mode=True
    )
    assert len(dataset) == 2


def cut(path, keep):
    """Keep the first ``keep`` bytes of a file (negative: drop the last)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_truncated_png(tmp_path):
    path = write_coco(tmp_path)
    cut(tmp_path / 'img' / 'b.png', -4)
    with pytest.raises(
        ImageFileError,
        match=r'1 of 2 image files cannot be loaded: \S+b\.png '
        r'\(truncated PNG',
    ):
        build(tmp_path, path)


def test_text_file_named_png(tmp_path):
    path = write_coco(tmp_path)
    (tmp_path / 'img' / 'a.png').write_text('not an image\n')
    with pytest.raises(
        ImageFileError, match=r'1 of 2 .*a\.png \(not a readable image'
    ):
        build(tmp_path, path)


@pytest.mark.parametrize(
    'keep, problem',
    [
        (-2, r'truncated JPEG: no end marker'),
        (100, r'truncated or corrupt JPG header'),
    ],
    ids=['end-marker', 'header'],
)
def test_truncated_jpeg(tmp_path, keep, problem):
    images = [
        dict(id=1, file_name='a.jpg', width=64, height=64),
        dict(id=2, file_name='b.jpg', width=64, height=64),
    ]
    path = write_coco(tmp_path, images=images)
    cut(tmp_path / 'img' / 'a.jpg', keep)
    with pytest.raises(ImageFileError, match=rf'a\.jpg \({problem}'):
        build(tmp_path, path)


def test_padding_after_the_end_marker_is_fine(tmp_path):
    images = [
        dict(id=1, file_name='a.jpg', width=64, height=64),
        dict(id=2, file_name='b.png', width=64, height=64),
    ]
    path = write_coco(tmp_path, images=images)
    for name in ('a.jpg', 'b.png'):
        with open(tmp_path / 'img' / name, 'ab') as f:
            f.write(b'\0' * 100)
    assert len(build(tmp_path, path)) == 2


def test_many_unreadable_files_are_counted(tmp_path):
    images = [
        dict(id=i, file_name=f'{i}.png', width=64, height=64)
        for i in range(1, 9)
    ]
    annotations = [
        dict(
            id=i,
            image_id=i,
            category_id=1,
            bbox=[4, 4, 20, 20],
            area=400,
            iscrowd=0,
        )
        for i in range(1, 9)
    ]
    path = write_coco(tmp_path, images=images, annotations=annotations)
    for i in range(1, 8):
        (tmp_path / 'img' / f'{i}.png').write_bytes(b'')
    with pytest.raises(
        ImageFileError, match=r'7 of 8 image files .* and 2 more$'
    ):
        build(tmp_path, path)


def test_check_files_false_skips_the_file_checks(tmp_path):
    path = write_coco(tmp_path)
    (tmp_path / 'img' / 'a.png').write_text('not an image\n')
    assert len(build(tmp_path, path, check_files=False)) == 2


def test_recorded_size_differs_from_the_file(tmp_path):
    path = write_coco(tmp_path)
    coco = json.loads(path.read_text())
    coco['images'][1].update(width=256, height=256)
    path.write_text(json.dumps(coco))
    with pytest.raises(
        AnnotationError,
        match=r'1 of 2 image records .*image id 2 \S+b\.png: recorded '
        r'256x256, file 64x64',
    ):
        build(tmp_path, path)


def write_turned_image(path):
    """An image stored 40 wide x 20 high with EXIF orientation 6 (turn by
    90 degrees): loaded 20 wide x 40 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(path, exif=exif)


@pytest.mark.parametrize('ext', ['jpg', 'png'])
@pytest.mark.parametrize('recorded, ok', [((20, 40), True), ((40, 20), False)])
def test_exif_orientation_is_applied_as_the_loader_does(
    tmp_path, recorded, ok, ext
):
    path = write_coco(tmp_path, annotations=[])
    name = f'c.{ext}'
    write_turned_image(tmp_path / 'img' / name)
    loaded = mmcv.imread(str(tmp_path / 'img' / name))
    assert loaded.shape[:2] == (40, 20)  # mmcv turns it (height, width)
    coco = json.loads(path.read_text())
    width, height = recorded
    coco['images'] = [dict(id=3, file_name=name, width=width, height=height)]
    path.write_text(json.dumps(coco))
    if ok:
        assert len(build(tmp_path, path, test_mode=True)) == 1
    else:
        with pytest.raises(
            AnnotationError,
            match=rf'image id 3 \S+c\.{ext}: recorded 40x20, file 20x40 '
            r'\(stored 40x20, turned by its EXIF orientation',
        ):
            build(tmp_path, path, test_mode=True)


def test_long_checks_log_progress(tmp_path, warnings, monkeypatch):
    monkeypatch.setattr(checked_coco, 'PROGRESS_EVERY_S', 0.0)
    warnings.setLevel(logging.INFO)
    build(tmp_path, write_coco(tmp_path))
    assert 'checked 1 of 2 image files' in warnings.text
    assert 'checked 2 image files in' in warnings.text
