"""mmdet's anchor-head results, computed faster on the CPU.

:class:`~.EfficientDetHead` states the algorithm; this module holds the
speed work under it. Each piece returns what the plain code returns
(tested against it), and each pays on the CPU: ``predict_by_feat`` of one
image (random weights, 5000 candidates, no score threshold, NMS IoU 0.5),
with every piece in place and with one switched back to the plain code,
medians of 40 interleaved runs, one thread, on a shared 2-core machine
(load 7, so the absolute times are high; the full predict of Lite0 at
2 threads, idle, is 82 ms, as fast as effdet's):

==============================  =============  ===========
switched back                   Lite0, 320 px  D0, 512 px
==============================  =============  ===========
nothing                         44 ms          55 ms
:func:`top_k`                   62 ms          140 ms
:func:`top_candidates`          48 ms          110 ms
:func:`class_wise_nms`          53 ms          69 ms
all three                       79 ms          207 ms
==============================  =============  ===========

- :func:`top_k`: the best 5000 of Lite0's 1.5 M (D0: 3.9 M) scores (80
  classes); a threshold read off a strided sample first leaves ``topk``
  a few thousand values to rank.
- :func:`top_candidates`: the scores are the largest tensor of the
  post-processing; taking them in each map's memory layout avoids a
  permuted (anchor, class)-ordered copy of all of them.
- :func:`class_wise_nms`: mmcv's ``batched_nms`` finds each class's
  members with a mask over all candidates, and calls its NMS through
  mmengine's deprecation shim (``inspect.getfullargspec`` per call).
- :meth:`FastAnchorHead.loss_by_feat_single`: on the CPU mmdet's
  ``FocalLoss`` expands the labels into an int64 one-hot copy of the
  scores and then a float one; a float one-hot target does without them.
  The smallest gain here: Lite0, 80 classes, batch 4, one thread, loss
  and backward 458 instead of 526 ms, a whole SGD iteration 2.60 instead
  of 2.68 s (the quickstart's, 3 classes at batch 8: 2.61 / 2.68 s).
"""

import functools
import importlib
import inspect
from typing import Callable, List, Optional, Tuple

import torch
from mmdet.models.dense_heads import AnchorHead
from mmdet.models.losses import FocalLoss
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType
from mmengine.structures import InstanceData
from torch import Tensor

# the module, not the function ``mmcv.ops.nms`` that shadows its name
mmcv_nms = importlib.import_module('mmcv.ops.nms')

# keys batched_nms itself consumes; the rest go to the NMS op
_BATCHED_KEYS = ('type', 'split_thr', 'class_agnostic', 'max_num')


def top_k(values: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The ``k`` largest of 1-d ``values`` and their indices, best first.

    All of them, sorted, when ``k`` is not in ``(0, len(values))``. For
    ``k`` well below the length, a threshold is read off a strided sample
    first and ``topk`` runs only on the values above it - the same values
    (ties may come in another order), a fraction of the time; the full
    ``topk`` runs whenever fewer than ``k`` pass the threshold.
    """
    n = values.numel()
    if not 0 < k < n:
        return values.sort(descending=True)
    stride = n // (8 * k)
    if stride >= 2:
        # about 2k values of the whole are expected at or above this
        sample = values[::stride]
        threshold = sample.topk(min(sample.numel(), 2 * k // stride + 1))
        candidates = (values >= threshold.values[-1]).nonzero().squeeze(1)
        if candidates.numel() >= k:
            best, i = values[candidates].topk(k)
            return best, candidates[i]
    return values.topk(k)


def top_candidates(
    cls_score_list: List[Tensor], k: int
) -> Tuple[Tensor, Tensor]:
    """The ``k`` best class logits of all levels together, best first.

    Returns the logits and their indices into mmdet's flat (anchor,
    class) order, anchors level by level in (row, column, anchor) order:
    what :func:`top_k` of ``torch.cat([s.permute(1, 2, 0).reshape(-1) for
    s in cls_score_list])`` returns. Each ``(C, H, W)`` map is flattened
    in its memory layout - (row, column, channel) for channels-last maps,
    which is mmdet's order, else (channel, row, column) - so no reordered
    copy is made; the indices of the chosen few are mapped back.
    """
    flats, starts, areas, widths, reorder = [], [0], [], [], []
    for score in cls_score_list:
        channels, height, width = score.shape
        channels_last = score.permute(1, 2, 0).is_contiguous()
        if channels_last:
            flats.append(score.permute(1, 2, 0).reshape(-1))
        else:
            flats.append(score.reshape(-1))
        starts.append(starts[-1] + flats[-1].numel())
        areas.append(height * width)
        widths.append(channels)
        reorder.append(not channels_last)
    logits, index = top_k(torch.cat(flats), k)
    if not any(reorder):
        return logits, index
    # (channel, row, column) -> (row, column, channel) within a level
    device = index.device
    bounds = torch.tensor(starts, device=device)
    level = torch.searchsorted(bounds, index, right=True) - 1
    local = index - bounds[level]
    area = torch.tensor(areas, device=device)[level]
    width = torch.tensor(widths, device=device)[level]
    mapped = (local % area) * width + torch.div(
        local, area, rounding_mode='floor'
    )
    moved = torch.tensor(reorder, device=device)[level]
    return logits, torch.where(moved, bounds[level] + mapped, index)


@functools.lru_cache(maxsize=None)
def _op_parameters(op: Callable) -> Optional[frozenset]:
    try:
        return frozenset(inspect.signature(op).parameters)
    except (TypeError, ValueError):
        return None


def resolve_nms_op(nms_cfg: dict) -> Callable:
    """The NMS function ``nms_cfg['type']`` names, as mmcv's
    ``batched_nms`` would call it, without the deprecation shim when the
    config's arguments do not need it (such as the deprecated ``iou_thr``,
    which only the shim translates)."""
    op = nms_cfg.get('type', 'nms')
    if isinstance(op, str):
        found = getattr(mmcv_nms, op, None)
        if not callable(found):
            raise ValueError(
                f'nms type {op!r} is not an NMS function of mmcv.ops.nms '
                "(expected e.g. 'nms' or 'soft_nms')"
            )
        op = found
    raw = getattr(op, '__wrapped__', None)
    if raw is None:
        return op
    params = _op_parameters(raw)
    options = set(nms_cfg) - set(_BATCHED_KEYS)
    if params is None or not options <= params:
        return op
    return raw


def class_wise_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    nms_cfg: Optional[dict],
    class_agnostic: bool = False,
) -> Tuple[Tensor, Tensor]:
    """Drop-in for ``mmcv.ops.batched_nms``: ``(dets, keep)`` with
    ``dets`` the kept ``(x1, y1, x2, y2, score)`` rows, best first (and,
    unlike mmcv's, empty ones for no boxes rather than an error).

    Above ``split_thr`` candidates, one NMS per class as mmcv runs it,
    each class's members found by one stable sort by label (a contiguous
    run each, in mmcv's ascending-index order) instead of a mask per
    class.
    """
    if boxes.numel() == 0:
        keep = torch.zeros(0, dtype=torch.long, device=boxes.device)
        return boxes.new_zeros((0, boxes.size(-1) + 1)), keep
    if nms_cfg is None:
        return mmcv_nms.batched_nms(
            boxes, scores, labels, nms_cfg, class_agnostic
        )
    cfg = dict(nms_cfg)
    cfg['type'] = resolve_nms_op(cfg)
    agnostic = cfg.get('class_agnostic', class_agnostic)
    split_thr = cfg.get('split_thr', 10000)
    if agnostic or boxes.size(-1) != 4 or boxes.shape[0] < split_thr:
        # one NMS over all boxes (class offsets): mmcv's own code path
        return mmcv_nms.batched_nms(boxes, scores, labels, cfg, agnostic)
    op = cfg.pop('type')
    max_num = cfg.pop('max_num', -1)
    for key in _BATCHED_KEYS:
        cfg.pop(key, None)
    # mmcv offsets the boxes of each class apart before splitting by
    # class; within one class that is a translation, which leaves every
    # IoU unchanged up to rounding - keep it so the kept sets agree bit
    # for bit
    offsets = labels.to(boxes) * (boxes.max() + 1)
    shifted = boxes + offsets[:, None]
    order = torch.sort(labels, stable=True).indices
    counts = torch.unique_consecutive(labels[order], return_counts=True)[1]
    kept = torch.zeros_like(scores, dtype=torch.bool)
    rescored = torch.zeros_like(scores)
    for members in torch.split(order, counts.tolist()):
        dets, keep = op(shifted[members], scores[members], **cfg)
        kept[members[keep]] = True
        rescored[members[keep]] = dets[:, -1]
    keep = kept.nonzero(as_tuple=False).view(-1)
    scores, inds = rescored[keep].sort(descending=True)
    keep = keep[inds]
    if max_num > 0:
        keep, scores = keep[:max_num], scores[:max_num]
    return torch.cat([boxes[keep], scores[:, None]], -1), keep


class FastAnchorHead(AnchorHead):
    """:class:`~mmdet.models.dense_heads.AnchorHead` with the same losses
    and post-processing, faster on the CPU.

    - :meth:`loss_by_feat_single`: a sigmoid ``FocalLoss`` on CPU tensors
      gets a float one-hot target built in place of mmdet's int64 one-hot
      labels and their float copy (``FocalLoss`` accepts either); on
      CUDA (mmcv's fused focal loss takes the labels), for other class
      losses and for decoded-box losses mmdet's method runs unchanged.
    - :meth:`_bbox_post_process`: the NMS is :func:`class_wise_nms`.
    """

    def loss_by_feat_single(
        self,
        cls_score: Tensor,
        bbox_pred: Tensor,
        anchors: Tensor,
        labels: Tensor,
        label_weights: Tensor,
        bbox_targets: Tensor,
        bbox_weights: Tensor,
        avg_factor: float,
    ) -> Tuple[Tensor, Tensor]:
        """:meth:`AnchorHead.loss_by_feat_single`, lighter on the CPU."""
        sigmoid_focal = (
            isinstance(self.loss_cls, FocalLoss)
            and self.loss_cls.use_sigmoid
            and not self.loss_cls.activated
        )
        if cls_score.is_cuda or self.reg_decoded_bbox or not sigmoid_focal:
            return super().loss_by_feat_single(
                cls_score,
                bbox_pred,
                anchors,
                labels,
                label_weights,
                bbox_targets,
                bbox_weights,
                avg_factor,
            )
        scores = cls_score.permute(0, 2, 3, 1).reshape(
            -1, self.cls_out_channels
        )
        labels = labels.reshape(-1)
        target = torch.zeros_like(scores)
        foreground = labels < self.cls_out_channels  # background: num_cls
        target[foreground, labels[foreground]] = 1
        loss_cls = self.loss_cls(
            scores, target, label_weights.reshape(-1), avg_factor=avg_factor
        )
        size = self.bbox_coder.encode_size
        loss_bbox = self.loss_bbox(
            bbox_pred.permute(0, 2, 3, 1).reshape(-1, size),
            bbox_targets.reshape(-1, bbox_targets.size(-1)),
            bbox_weights.reshape(-1, bbox_weights.size(-1)),
            avg_factor=avg_factor,
        )
        return loss_cls, loss_bbox

    def _bbox_post_process(
        self,
        results: InstanceData,
        cfg: ConfigType,
        rescale: bool = False,
        with_nms: bool = True,
        img_meta: Optional[dict] = None,
    ) -> InstanceData:
        """mmdet's post-processing (rescale, ``min_bbox_size``, class-wise
        ``cfg.nms``, ``cfg.max_per_img``), the NMS through
        :func:`class_wise_nms`."""
        results = super()._bbox_post_process(
            results, cfg, rescale=rescale, with_nms=False, img_meta=img_meta
        )
        if with_nms and results.bboxes.numel() > 0:
            dets, keep = class_wise_nms(
                get_box_tensor(results.bboxes),
                results.scores,
                results.labels,
                cfg.nms,
            )
            results = results[keep]
            results.scores = dets[:, -1]
            results = results[: cfg.max_per_img]
        return results
