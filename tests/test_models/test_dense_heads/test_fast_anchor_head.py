"""The speed work under EfficientDetHead against the plain code."""

import importlib

import pytest
import torch
from mmcv.ops import batched_nms

from mmdet_efficientdet.models.dense_heads.fast_anchor_head import (
    class_wise_nms,
    resolve_nms_op,
    top_candidates,
    top_k,
)

mmcv_nms = importlib.import_module('mmcv.ops.nms')


def class_maps(num_classes, image_size, seed=0):
    """Class logits of P3-P7 of one image, 9 anchors, mostly background."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [image_size // 2**level for level in range(3, 8)]
    return [
        torch.randn(9 * num_classes, s, s, generator=gen) * 2 - 3
        for s in sizes
    ]


@pytest.mark.parametrize('channels_last', [False, True])
def test_candidate_indices_in_either_memory_layout(channels_last):
    scores = class_maps(3, 256, seed=3)
    if channels_last:  # what a deployed channels-last model outputs
        scores = [
            s[None].contiguous(memory_format=torch.channels_last)[0]
            for s in scores
        ]
    logits, index = top_candidates(scores, 700)
    flat = torch.cat([s.permute(1, 2, 0).reshape(-1) for s in scores])
    best = flat.topk(700)
    assert torch.equal(logits, best.values)
    assert torch.equal(flat[index], logits)
    assert torch.equal(index.sort().values, best.indices.sort().values)
    # without nms_pre: every candidate, best first
    logits, index = top_candidates(scores, -1)
    assert torch.equal(flat[index], logits)
    assert torch.equal(index.sort().values, torch.arange(flat.numel()))


@pytest.mark.parametrize('n,k', [(100, 10), (10_000, 50), (10_000, 5000)])
def test_top_k_equals_torch_topk(n, k):
    gen = torch.Generator().manual_seed(n + k)
    values = torch.randn(n, generator=gen)
    best, index = top_k(values, k)
    assert torch.equal(best, values.topk(k).values)
    assert torch.equal(values[index], best)
    # a sample that misses the best values falls back to the full topk
    skewed = torch.zeros(n)
    skewed[1::2] = torch.arange(n // 2, dtype=torch.float)
    best, index = top_k(skewed, k)
    assert torch.equal(best, skewed.topk(k).values)
    assert torch.equal(skewed[index], best)


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
