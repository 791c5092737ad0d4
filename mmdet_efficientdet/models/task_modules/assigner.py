"""The official EfficientDet target assignment."""

from typing import Union

import torch
from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class EfficientDetAssigner(MaxIoUAssigner):
    """Max-IoU assignment with the official forced matches.

    The official ``ArgMaxMatcher(0.5, 0.5, force_match_for_each_row=True)``:
    an anchor whose best IoU is at least ``pos_iou_thr`` takes that ground
    truth, below ``neg_iou_thr`` it is negative, and then every ground truth
    takes its single best anchor (the first on ties) whatever the IoU. When
    several ground truths have the same best anchor, the *first* of them
    keeps it. mmdet's ``MaxIoUAssigner(min_pos_iou=0,
    gt_max_assign_all=False)`` is the same except that there the *last*
    one does - which is all this class changes.

    Args:
        pos_iou_thr (float): IoU from which an anchor is positive.
            Defaults to 0.5.
        neg_iou_thr (float): IoU below which an anchor is negative.
            Defaults to 0.5.
        **kwargs: Other :class:`MaxIoUAssigner` arguments, except
            ``min_pos_iou``, ``gt_max_assign_all`` and ``match_low_quality``,
            which the forced matching fixes.

    Example:
        >>> import torch
        >>> from mmengine.structures import InstanceData
        >>> self = EfficientDetAssigner()
        >>> priors = InstanceData(priors=torch.tensor(
        ...     [[0., 0., 10., 10.], [20., 20., 30., 30.]]))
        >>> gts = InstanceData(
        ...     bboxes=torch.tensor([[0., 0., 4., 4.], [1., 1., 5., 5.]]),
        ...     labels=torch.tensor([3, 7]))
        >>> self.assign(priors, gts).labels
        tensor([ 3, -1])
    """

    def __init__(
        self,
        pos_iou_thr: float = 0.5,
        neg_iou_thr: Union[float, tuple] = 0.5,
        **kwargs,
    ) -> None:
        fixed = {'min_pos_iou', 'gt_max_assign_all', 'match_low_quality'}
        if fixed & set(kwargs):
            raise TypeError(
                f'{type(self).__name__} fixes {sorted(fixed & set(kwargs))}'
            )
        super().__init__(
            pos_iou_thr, neg_iou_thr, match_low_quality=False, **kwargs
        )

    def assign_wrt_overlaps(
        self, overlaps: Tensor, gt_labels: Tensor
    ) -> AssignResult:
        result = super().assign_wrt_overlaps(overlaps, gt_labels)
        num_gts, num_priors = overlaps.shape
        if num_gts == 0 or num_priors == 0:
            return result
        best_prior = overlaps.argmax(dim=1)
        first_gt = torch.full(
            (num_priors,), num_gts, dtype=torch.long, device=overlaps.device
        )
        first_gt.scatter_reduce_(
            0,
            best_prior,
            torch.arange(num_gts, device=overlaps.device),
            reduce='amin',
        )
        forced = first_gt < num_gts
        result.gt_inds[forced] = first_gt[forced] + 1
        result.labels[forced] = gt_labels[first_gt[forced]]
        return result
