import importlib

import pytest
import torch
from mmcv.ops import batched_nms

from mmdet_efficientdet.models.layers import class_wise_nms, resolve_nms_op

mmcv_nms = importlib.import_module('mmcv.ops.nms')


def candidates(n, num_classes, seed=0, size=200.0):
    """Overlapping boxes in clusters, some scores tied, classes shuffled."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n // 8 + 1, 2, generator=g) * size
    centre = centres[torch.randint(len(centres), (n,), generator=g)]
    centre = centre + torch.randn(n, 2, generator=g) * 4
    half = 5 + torch.rand(n, 2, generator=g) * 20
    boxes = torch.cat([centre - half, centre + half], 1)
    scores = torch.rand(n, generator=g)
    scores[::7] = 0.5  # ties
    labels = torch.randint(num_classes, (n,), generator=g)
    return boxes, scores, labels


NMS_CFGS = [
    dict(type='nms', iou_threshold=0.5, split_thr=100),
    dict(type='nms', iou_threshold=0.5),  # one offset NMS (n < 10000)
    dict(type='nms', iou_threshold=0.3, split_thr=100, max_num=50),
    dict(type='nms', iou_threshold=0.5, split_thr=100, class_agnostic=True),
    dict(type='soft_nms', iou_threshold=0.3, sigma=0.5, split_thr=100),
    dict(
        type='soft_nms',
        iou_threshold=0.3,
        sigma=0.5,
        min_score=1e-3,
        method='gaussian',
        split_thr=100,
    ),
    dict(type='nms', iou_thr=0.5, split_thr=100),  # deprecated name
]


@pytest.mark.parametrize('nms_cfg', NMS_CFGS)
@pytest.mark.parametrize('n,num_classes', [(2000, 40), (300, 1), (150, 90)])
def test_same_as_mmcv_batched_nms(nms_cfg, n, num_classes):
    boxes, scores, labels = candidates(n, num_classes)
    expected_dets, expected_keep = batched_nms(
        boxes, scores, labels, dict(nms_cfg)
    )
    dets, keep = class_wise_nms(boxes, scores, labels, dict(nms_cfg))
    # NMS did something: dropped boxes or (soft-NMS) lowered scores
    assert 0 < len(keep) < n or not torch.equal(dets[:, -1], scores[keep])
    assert torch.equal(keep, expected_keep)
    assert torch.equal(dets, expected_dets)


def test_empty_and_no_config():
    boxes, scores, labels = candidates(50, 3)
    dets, keep = class_wise_nms(boxes[:0], scores[:0], labels[:0], NMS_CFGS[0])
    assert dets.shape == (0, 5) and keep.numel() == 0
    dets, keep = class_wise_nms(boxes, scores, labels, None)
    expected_dets, expected_keep = batched_nms(boxes, scores, labels, None)
    assert torch.equal(keep, expected_keep)
    assert torch.equal(dets, expected_dets)


def test_deprecation_shim_dropped_only_when_not_needed():
    assert resolve_nms_op(dict(type='nms', iou_threshold=0.5)) is (
        mmcv_nms.nms.__wrapped__
    )
    # the old argument name is only understood by mmengine's wrapper
    assert resolve_nms_op(dict(type='nms', iou_thr=0.5)) is mmcv_nms.nms
    assert resolve_nms_op(dict(type='soft_nms', sigma=0.5)) is (
        mmcv_nms.soft_nms.__wrapped__
    )
    op = lambda boxes, scores, **kw: None  # noqa: E731
    assert resolve_nms_op(dict(type=op)) is op


def test_unknown_type_is_named():
    with pytest.raises(ValueError, match="'fast_nms'"):
        resolve_nms_op(dict(type='fast_nms'))
