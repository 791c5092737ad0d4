"""The anchors of the official EfficientDet, box for box."""

from typing import List, Sequence, Tuple, Union

import torch
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import HorizontalBoxes
from torch import Tensor

# Official ``aspect_ratios``: literal (width, height) multipliers, not
# sqrt-normalised, so 1.4 x 0.7 anchors have 98% of the square's area.
TF_ASPECTS = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))


@TASK_UTILS.register_module()
class EfficientDetAnchorGenerator(AnchorGenerator):
    """Anchors identical to the official EfficientDet's and effdet's.

    mmdet's :class:`AnchorGenerator` cannot reproduce them: it reads ratios
    as ``h / w`` with a square root (``sqrt(2) x 1/sqrt(2)`` instead of the
    official ``1.4 x 0.7``), and its default order is ratio-major. Here, as
    in the official code:

    - level ``l`` anchors of base size ``anchor_scale * stride * 2 ** (k /
      scales_per_octave)`` for octave scale ``k``, times a literal
      ``(width, height)`` multiplier from ``aspect_ratios``;
    - per location the order is scale-major: anchor ``k *
      len(aspect_ratios) + a``; locations row-major (y, then x), which is
      the channel layout of ported TF weights;
    - centres at ``(i + 0.5) * stride``, where the stride of a level is
      the input size over its feature size. On inputs that are a multiple
      of the largest stride this is ``2 ** level``; on the official Lite0
      (320) and Lite2 (448), whose coarse feature sizes are rounded up, it
      is fractional (e.g. 320 / 3 at P7), as in the official code. The
      input size is taken as the finest feature size times its nominal
      stride, exact when the padded input is a multiple of that stride.

    Boxes are computed in float64, as effdet's numpy code does, and then
    cast, so they equal effdet's ``Anchors.boxes`` (converted from y1x1y2x2
    to x1y1x2y2) exactly.

    Args:
        strides (Sequence[int]): Nominal strides, finest first, e.g.
            ``[8, 16, 32, 64, 128]``.
        anchor_scale (float): Official ``anchor_scale``. Defaults to 4.
        scales_per_octave (int): Official ``num_scales``. Defaults to 3.
        aspect_ratios (Sequence[tuple]): ``(width, height)`` multipliers.
            Defaults to the official ``((1, 1), (1.4, 0.7), (0.7, 1.4))``.

    Example:
        >>> self = EfficientDetAnchorGenerator([8, 16], anchor_scale=4.0)
        >>> anchors = self.grid_priors([(2, 2), (1, 1)], device='cpu')
        >>> [tuple(a.shape) for a in anchors]
        [(36, 4), (9, 4)]
        >>> anchors[0][:2]
        tensor([[-12.0000, -12.0000,  20.0000,  20.0000],
                [-18.4000,  -7.2000,  26.4000,  15.2000]])
    """

    def __init__(
        self,
        strides: Sequence[int],
        anchor_scale: float = 4.0,
        scales_per_octave: int = 3,
        aspect_ratios: Sequence[Tuple[float, float]] = TF_ASPECTS,
        use_box_type: bool = False,
    ) -> None:
        if anchor_scale <= 0:
            raise ValueError(
                f'anchor_scale must be positive, got {anchor_scale}'
            )
        if scales_per_octave < 1:
            raise ValueError(
                f'scales_per_octave must be >= 1, got {scales_per_octave}'
            )
        aspects = [tuple(float(v) for v in a) for a in aspect_ratios]
        if not aspects or any(len(a) != 2 or min(a) <= 0 for a in aspects):
            raise ValueError(
                'aspect_ratios must be (width, height) pairs of '
                f'positive numbers, got {aspect_ratios}'
            )
        self.anchor_scale = float(anchor_scale)
        self.aspect_ratios = aspects
        super().__init__(
            strides=list(strides),
            # informative only (h / w); the shapes come from aspect_ratios
            ratios=[h / w for w, h in aspects],
            octave_base_scale=anchor_scale,
            scales_per_octave=scales_per_octave,
            scale_major=False,
            center_offset=0.5,
            use_box_type=use_box_type,
        )

    def _half_sizes(self, stride: Tuple[float, float]) -> Tensor:
        """(A, 2) half widths and heights, official expression order."""
        halves = []
        for k in range(self.scales_per_octave):
            octave = k / float(self.scales_per_octave)
            size_x = self.anchor_scale * stride[0] * 2**octave
            size_y = self.anchor_scale * stride[1] * 2**octave
            for aspect_x, aspect_y in self.aspect_ratios:
                halves.append(
                    (size_x * aspect_x / 2.0, size_y * aspect_y / 2.0)
                )
        return torch.tensor(halves, dtype=torch.float64)

    def gen_base_anchors(self) -> List[Tensor]:
        """Anchors of the first location of each level (nominal stride)."""
        base = []
        for stride_w, stride_h in self.strides:
            half = self._half_sizes((stride_w, stride_h))
            centre = torch.tensor(
                [stride_w / 2, stride_h / 2], dtype=torch.float64
            )
            base.append(torch.cat([centre - half, centre + half], 1).float())
        return base

    def level_strides(
        self, featmap_sizes: Sequence[Tuple[int, int]]
    ) -> List[Tuple[float, float]]:
        """(w, h) stride of each level: input size over feature size."""
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(
                f'expected {self.num_levels} feature map sizes, '
                f'got {len(featmap_sizes)}'
            )
        image_h = int(featmap_sizes[0][0]) * self.strides[0][1]
        image_w = int(featmap_sizes[0][1]) * self.strides[0][0]
        return [(image_w / int(w), image_h / int(h)) for h, w in featmap_sizes]

    def grid_priors(
        self,
        featmap_sizes: List[Tuple],
        dtype: torch.dtype = torch.float32,
        device: Union[str, torch.device] = 'cuda',
    ) -> List[Tensor]:
        """Anchors of every level, ``(H * W * A, 4)`` x1y1x2y2 each."""
        strides = self.level_strides(featmap_sizes)
        return [
            self._level_anchors(size, stride, dtype, device)
            for size, stride in zip(featmap_sizes, strides)
        ]

    def single_level_grid_priors(
        self,
        featmap_size: Tuple[int, int],
        level_idx: int,
        dtype: torch.dtype = torch.float32,
        device: Union[str, torch.device] = 'cuda',
    ) -> Tensor:
        """Anchors of one level at its nominal stride.

        Equal to :meth:`grid_priors` whenever the input is a multiple of
        the largest stride; use :meth:`grid_priors` otherwise.
        """
        stride = tuple(float(s) for s in self.strides[level_idx])
        return self._level_anchors(featmap_size, stride, dtype, device)

    def _level_anchors(
        self,
        featmap_size: Tuple[int, int],
        stride: Tuple[float, float],
        dtype: torch.dtype,
        device: Union[str, torch.device],
    ) -> Tensor:
        feat_h, feat_w = (int(s) for s in featmap_size)
        stride_w, stride_h = stride
        # effdet: np.arange(stride / 2, image_size, stride)
        xs = (
            stride_w / 2 + torch.arange(feat_w, dtype=torch.float64) * stride_w
        )
        ys = (
            stride_h / 2 + torch.arange(feat_h, dtype=torch.float64) * stride_h
        )
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        centres = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
        half = self._half_sizes(stride)
        anchors = torch.cat(
            [centres[:, None] - half[None], centres[:, None] + half[None]], 2
        )
        anchors = anchors.reshape(-1, 4).to(dtype=dtype, device=device)
        if self.use_box_type:
            anchors = HorizontalBoxes(anchors)
        return anchors
