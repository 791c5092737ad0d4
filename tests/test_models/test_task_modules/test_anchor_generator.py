"""EfficientDetAnchorGenerator against effdet's (= the official) anchors."""

import pytest
import torch
from effdet.anchors import Anchors, get_feat_sizes

from mmdet_efficientdet.models.task_modules import (
    TF_ASPECTS,
    EfficientDetAnchorGenerator,
)


def effdet_anchors(image_size, anchor_scale, max_level=7):
    """effdet's anchors as x1y1x2y2, with its feature sizes P3..."""
    anchors = Anchors(3, max_level, 3, TF_ASPECTS, anchor_scale, image_size)
    sizes = get_feat_sizes(image_size, max_level)[3:]
    return anchors.boxes[:, [1, 0, 3, 2]], sizes


@pytest.mark.parametrize(
    'image_size,anchor_scale,max_level',
    [
        ((512, 512), 4.0, 7),  # D0
        ((320, 320), 3.0, 7),  # Lite0: 320 / 3 at P7
        ((448, 448), 3.0, 7),  # Lite2: 448 / 4 at P7
        ((1536, 1536), 5.0, 7),  # D7
        ((1536, 1536), 4.0, 8),  # D7x: P3-P8
        ((384, 256), 4.0, 7),  # not square
    ],
)
def test_identical_to_effdet(image_size, anchor_scale, max_level):
    expected, feat_sizes = effdet_anchors(image_size, anchor_scale, max_level)
    generator = EfficientDetAnchorGenerator(
        [2**level for level in range(3, max_level + 1)],
        anchor_scale=anchor_scale,
    )
    anchors = generator.grid_priors(feat_sizes, device='cpu')
    assert all(a.dtype == torch.float32 for a in anchors)
    assert torch.equal(torch.cat(anchors), expected)


def test_order_per_location_is_scale_major():
    generator = EfficientDetAnchorGenerator([8], anchor_scale=4.0)
    anchors = generator.grid_priors([(1, 1)], device='cpu')[0]
    widths = anchors[:, 2] - anchors[:, 0]
    heights = anchors[:, 3] - anchors[:, 1]
    sizes = torch.tensor([32.0 * 2 ** (k / 3) for k in range(3)])
    aspect_w = torch.tensor([1.0, 1.4, 0.7])
    aspect_h = torch.tensor([1.0, 0.7, 1.4])
    # anchor k * 3 + a: octave scale k, literal (w, h) multipliers a
    assert torch.allclose(widths, (sizes[:, None] * aspect_w).flatten())
    assert torch.allclose(heights, (sizes[:, None] * aspect_h).flatten())
    assert torch.allclose(
        (anchors[:, :2] + anchors[:, 2:]) / 2, torch.tensor(4.0)
    )
    # locations row-major: the second anchor block is one stride right
    two = generator.grid_priors([(2, 2)], device='cpu')[0]
    assert torch.allclose(two[9:18], two[:9] + torch.tensor([8.0, 0, 8, 0]))
    assert torch.allclose(two[18:27], two[:9] + torch.tensor([0, 8.0, 0, 8]))


def test_nominal_stride_helpers_agree_on_divisible_inputs():
    generator = EfficientDetAnchorGenerator([8, 16, 32, 64, 128])
    sizes = [(32, 16), (16, 8), (8, 4), (4, 2), (2, 1)]  # 256 x 128
    grid = generator.grid_priors(sizes, dtype=torch.float64, device='cpu')
    for level, size in enumerate(sizes):
        single = generator.single_level_grid_priors(
            size, level, dtype=torch.float64, device='cpu'
        )
        assert torch.equal(single, grid[level])
    assert generator.num_base_priors == [9] * 5
    assert torch.equal(generator.base_anchors[0], grid[0][:9].float())
    flags = generator.valid_flags(sizes, (256, 128), device='cpu')
    assert all(f.all() for f in flags)


def test_strides_follow_the_feature_sizes():
    generator = EfficientDetAnchorGenerator([8, 16, 32, 64, 128])
    sizes = [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]  # Lite0, 320
    strides = generator.level_strides(sizes)
    assert strides[:4] == [
        (8.0, 8.0),
        (16.0, 16.0),
        (32.0, 32.0),
        (64.0, 64.0),
    ]
    assert strides[4] == (320 / 3, 320 / 3)


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(anchor_scale=0), 'anchor_scale must be positive'),
        (dict(scales_per_octave=0), 'scales_per_octave must be >= 1'),
        (dict(aspect_ratios=[(1.0, 1.0, 1.0)]), 'aspect_ratios must be'),
        (dict(aspect_ratios=[(1.0, -1.0)]), 'aspect_ratios must be'),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EfficientDetAnchorGenerator([8, 16], **kwargs)


def test_wrong_number_of_levels():
    generator = EfficientDetAnchorGenerator([8, 16, 32])
    with pytest.raises(ValueError, match='expected 3 feature map sizes'):
        generator.grid_priors([(4, 4), (2, 2)], device='cpu')
