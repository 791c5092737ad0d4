"""EfficientDetAssigner against effdet's (= the official) AnchorLabeler."""

import pytest
import torch
from effdet.anchors import AnchorLabeler, Anchors
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmengine.structures import InstanceData

from mmdet_efficientdet.models.task_modules import (
    TF_ASPECTS,
    EfficientDetAssigner,
)

IMAGE_SIZE = 256
NUM_CLASSES = 5


@pytest.fixture(scope='module')
def anchors():
    return Anchors(3, 7, 3, TF_ASPECTS, 4.0, (IMAGE_SIZE, IMAGE_SIZE))


def effdet_labels(anchors, boxes, labels):
    """Per anchor: the class it learns, -1 for background."""
    labeler = AnchorLabeler(anchors, NUM_CLASSES, match_threshold=0.5)
    cls_targets, _, _ = labeler.label_anchors(
        boxes[:, [1, 0, 3, 2]], labels + 1
    )
    return torch.cat([t.reshape(-1) for t in cls_targets])


def our_labels(assigner, anchors, boxes, labels):
    priors = anchors.boxes[:, [1, 0, 3, 2]]
    result = assigner.assign(
        InstanceData(priors=priors), InstanceData(bboxes=boxes, labels=labels)
    )
    return result.labels


def random_boxes(seed, num):
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(num, 2, generator=gen) * IMAGE_SIZE
    size = 4 + torch.rand(num, 2, generator=gen) * 120
    boxes = torch.cat([centre - size / 2, centre + size / 2], 1)
    boxes = boxes.clamp(0, IMAGE_SIZE).round()
    labels = torch.randint(NUM_CLASSES, (num,), generator=gen)
    return boxes, labels


@pytest.mark.parametrize('seed', range(6))
def test_identical_to_effdet(anchors, seed):
    boxes, labels = random_boxes(seed, 3 + 4 * seed)
    if seed % 2:  # near-duplicates: shared best anchors, IoU ties
        boxes = torch.cat([boxes, boxes[:3] + 1, boxes[:2]])
        labels = torch.cat(
            [labels, (labels[:3] + 1) % NUM_CLASSES, labels[:2]]
        )
    expected = effdet_labels(anchors, boxes, labels)
    got = our_labels(EfficientDetAssigner(), anchors, boxes, labels)
    assert (expected >= 0).sum() > len(boxes)
    assert torch.equal(got, expected)


def test_first_ground_truth_keeps_a_shared_best_anchor(anchors):
    # two tiny boxes whose best anchor is the same, IoU < 0.5: only forced
    boxes = torch.tensor([[10.0, 10, 14, 14], [11, 11, 15, 15]])
    labels = torch.tensor([1, 2])
    expected = effdet_labels(anchors, boxes, labels)
    got = our_labels(EfficientDetAssigner(), anchors, boxes, labels)
    assert torch.equal(got, expected)
    assert got[got >= 0].tolist() == [1]
    # mmdet's own assigner lets the last one win: why this class exists
    mmdet = MaxIoUAssigner(0.5, 0.5, min_pos_iou=0.0, gt_max_assign_all=False)
    assert our_labels(mmdet, anchors, boxes, labels)[got >= 0].tolist() == [2]


def test_no_ground_truth(anchors):
    got = EfficientDetAssigner().assign(
        InstanceData(priors=anchors.boxes[:, [1, 0, 3, 2]]),
        InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long)
        ),
    )
    assert (got.gt_inds == 0).all()


def test_fixed_arguments():
    with pytest.raises(TypeError, match='fixes'):
        EfficientDetAssigner(min_pos_iou=0.3)
