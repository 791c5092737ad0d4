"""CocoCategoryIdMetric: labels read as COCO category ids."""

import json

import numpy as np
import pytest
import torch
from mmdet.evaluation import CocoMetric
from mmengine.logging import MMLogger

from mmdet_efficientdet.evaluation import CocoCategoryIdMetric

# Category ids with gaps, as COCO's 80 of 1-90.
CATEGORIES = [(1, 'person'), (3, 'car'), (90, 'toothbrush')]
CLASSES = tuple(name for _, name in CATEGORIES)
BOXES = {1: [10, 10, 50, 60], 3: [60, 20, 90, 90], 90: [5, 70, 30, 95]}


@pytest.fixture(autouse=True)
def no_leftover_logger():
    before = set(MMLogger._instance_dict)
    yield
    for name in set(MMLogger._instance_dict) - before:
        del MMLogger._instance_dict[name]


@pytest.fixture
def ann_file(tmp_path):
    annotations = [
        dict(
            id=i + 1,
            image_id=1,
            category_id=cat_id,
            bbox=[x1, y1, x2 - x1, y2 - y1],
            area=float((x2 - x1) * (y2 - y1)),
            iscrowd=0,
        )
        for i, (cat_id, (x1, y1, x2, y2)) in enumerate(BOXES.items())
    ]
    coco = dict(
        images=[dict(id=1, width=100, height=100, file_name='a.jpg')],
        annotations=annotations,
        categories=[dict(id=i, name=n) for i, n in CATEGORIES],
    )
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(coco))
    return str(path)


def evaluate(metric, labels, boxes, scores):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process(
        {},
        [
            dict(
                img_id=1,
                ori_shape=(100, 100),
                pred_instances=dict(
                    bboxes=torch.tensor(boxes, dtype=torch.float32),
                    scores=torch.tensor(scores),
                    labels=torch.tensor(labels),
                ),
            )
        ],
    )
    return metric.evaluate(size=1)


def test_category_id_labels_score_like_dataset_labels(ann_file):
    boxes = list(BOXES.values())
    # effdet's outputs: label = category id - 1; plus a confident box of
    # id 2, which the annotations do not evaluate
    ids = CocoCategoryIdMetric(ann_file=ann_file, metric='bbox')
    by_id = evaluate(
        ids,
        [c - 1 for c in BOXES] + [1],
        boxes + [boxes[0]],
        [0.9, 0.8, 0.7, 0.95],
    )
    plain = CocoMetric(ann_file=ann_file, metric='bbox')
    by_label = evaluate(plain, [0, 1, 2], boxes, [0.9, 0.8, 0.7])
    assert by_id['coco/bbox_mAP'] == pytest.approx(1.0)
    assert by_id == by_label


def test_wrong_offset_loses_everything(ann_file):
    metric = CocoCategoryIdMetric(
        ann_file=ann_file, metric='bbox', label_offset=0
    )
    # ids 0, 2 and 89 are not evaluated: every detection is dropped, and
    # CocoMetric reports no result for an empty detection list
    result = evaluate(
        metric, [c - 1 for c in BOXES], list(BOXES.values()), [0.9] * 3
    )
    assert result.get('coco/bbox_mAP', 0.0) == 0.0


def test_dataset_labels_keeps_per_detection_fields():
    metric = CocoCategoryIdMetric.__new__(CocoCategoryIdMetric)
    metric.label_offset, metric.cat_ids = 1, [1, 3, 90]
    result = dict(
        img_id=7,
        labels=np.array([89, 1, 2, 0]),
        scores=np.array([0.1, 0.2, 0.3, 0.4]),
        bboxes=np.arange(16.0).reshape(4, 4),
        masks=['m0', 'm1', 'm2', 'm3'],
    )
    out = metric.dataset_labels(result)
    assert out['labels'].tolist() == [2, 1, 0]
    assert out['scores'].tolist() == [0.1, 0.3, 0.4]
    assert out['bboxes'][:, 0].tolist() == [0.0, 8.0, 12.0]
    assert out['masks'] == ['m0', 'm2', 'm3']
    assert out['img_id'] == 7


def test_needs_ann_file():
    with pytest.raises(ValueError, match='needs the ann_file'):
        CocoCategoryIdMetric()


def test_registered():
    from mmdet.registry import METRICS

    assert METRICS.get('CocoCategoryIdMetric') is CocoCategoryIdMetric
    assert METRICS.get('CocoMetric') is CocoMetric
