"""mmdet's post-processing of EfficientDetHead as ONNX operators.

What ``EfficientDetHead.predict`` does after the network, so that an
exported graph goes from the image to the final detections:

1. the ``nms_pre`` best (anchor, class) logits of the image (``TopK``,
   in two exact steps, see :func:`top_pairs`);
2. their scores (sigmoid), boxes decoded against their anchors and
   clipped to the resized image (``img_shape``), then scaled back to the
   original image (divided by ``scale_factor``);
3. class-wise NMS with the score threshold and IoU of ``test_cfg``, as
   one ``NonMaxSuppression`` over boxes moved apart by class (mmcv's
   ``batched_nms`` offsets the same way; within a class it is a
   translation, which keeps every IoU), at most ``max_per_img`` kept, best
   first - the first ``max_per_img`` that mmdet keeps;
4. fixed-size outputs: the kept rows scattered into a ``-1`` score table
   and its ``max_per_img`` best taken, so every image has ``max_per_img``
   rows, ``num_dets`` of them real (padding: box 0, score 0, label -1).

``NonMaxSuppression`` drops a box whose IoU with a kept one exceeds the
threshold and keeps scores above ``score_threshold``, as mmcv's NMS and
the head's ``score_thr`` do.
"""

from typing import Tuple

import torch
from mmcv.ops import nms as mmcv_nms
from torch import Tensor


class OnnxNonMaxSuppression(torch.autograd.Function):
    """``NonMaxSuppression`` of one class: ``(K, 3)`` rows of
    ``(image, 0, box)``, each image's kept boxes best first.

    Eager mode (tracing, checks) runs mmcv's NMS, which keeps the same
    boxes.
    """

    @staticmethod
    def forward(
        ctx,
        boxes: Tensor,
        scores: Tensor,
        max_output: int,
        iou_threshold: float,
        score_threshold: float,
    ) -> Tensor:
        rows = []
        for i in range(boxes.shape[0]):
            valid = (scores[i, 0] > score_threshold).nonzero()[:, 0]
            if valid.numel() == 0:
                continue
            _, keep = mmcv_nms(
                boxes[i, valid], scores[i, 0, valid], iou_threshold
            )
            keep = valid[keep[:max_output]]
            row = torch.zeros(len(keep), 3, dtype=torch.long)
            row[:, 0] = i
            row[:, 2] = keep
            rows.append(row)
        if not rows:
            return torch.zeros(0, 3, dtype=torch.long)
        return torch.cat(rows)

    @staticmethod
    def symbolic(g, boxes, scores, max_output, iou_threshold, score_thr):
        def const(value, dtype):
            return g.op('Constant', value_t=torch.tensor([value], dtype=dtype))

        return g.op(
            'NonMaxSuppression',
            boxes,
            scores,
            const(max_output, torch.long),
            const(iou_threshold, torch.float),
            const(score_thr, torch.float),
        )


def top_pairs(logits: Tensor, k: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The ``k`` best (anchor, class) logits of each image, best first.

    Returns ``(N, k)`` logits, anchor and class indices: what ``TopK`` of
    ``logits.reshape(N, -1)`` gives, without a ``TopK`` over all of them.
    The ``k``-th best logit ``v`` is at least ``t``, the ``k``-th largest
    of the anchors' maxima over classes (the ``k`` anchors with the
    largest maxima hold ``k`` logits of ``t`` or more), so every logit of
    ``v`` or more lies in one of those ``k`` anchors and is at least
    ``t``. Hence: ``TopK`` of the per-anchor maxima (unsorted; ``t`` is
    their minimum), the ``k x C`` logits of the chosen anchors, those
    below ``t`` raised to just under it (``k`` logits of ``t`` or more
    outrank them all), and ``TopK`` of these. The same logits (ties at
    the ``k``-th may pick others of equal value).

    Why: onnxruntime's ``TopK`` ranks a large input through a heap, one
    element at a time, and the heap takes in every element that beats its
    smallest. Lite0 at 320 (19206 anchors, 90 classes, ``k`` 5000), 2
    threads, 5 ms apart, 40 interleaved runs on logits drawn three ways:
    one ``TopK`` of the 1.7 M logits 14.1-14.2 ms, these steps 3.1-3.2 ms
    (with the low logits at ``-inf`` through ``Where`` 4.1-8.2 ms). The
    least favourable case is an untrained head, all logits near its bias,
    where most logits of the chosen rows pass ``t``: the last ``TopK``
    then took about 4 ms, and Lite0's whole ``--nms`` graph was still 8-13%
    faster than with one ``TopK`` (paired, 60-150 rounds).

    Args:
        logits (Tensor): ``(N, A, C)`` class logits.
        k (int): How many, ``0 < k <= A * C``.
    """
    n, num_anchors, num_classes = logits.shape
    if k >= num_anchors:
        top, index = logits.reshape(n, -1).topk(k, dim=1)
        anchor = torch.div(index, num_classes, rounding_mode='floor')
        return top, anchor, index % num_classes
    maxima, rows = logits.amax(dim=2).topk(k, dim=1, sorted=False)
    image = torch.arange(n, device=logits.device).unsqueeze(1)
    chosen = logits.reshape(n * num_anchors, num_classes)[
        rows + image * num_anchors
    ].reshape(n, k * num_classes)
    t = maxima.amin(dim=1, keepdim=True)
    # below t by several of its float32 steps (2**-23 of |t| each)
    chosen = torch.maximum(chosen, t - (t.abs() + 1) * 2**-20)
    top, index = chosen.topk(k, dim=1)
    row = torch.div(index, num_classes, rounding_mode='floor')
    return top, rows.gather(1, row), index % num_classes


def detections(
    logits: Tensor,
    deltas: Tensor,
    anchors: Tensor,
    bbox_coder,
    img_shape: Tensor,
    scale_factor: Tensor,
    nms_pre: int,
    score_thr: float,
    iou_threshold: float,
    max_per_img: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Final detections of a batch, in original-image pixels.

    Args:
        logits (Tensor): ``(N, A, C)`` class logits, mmdet's anchor order.
        deltas (Tensor): ``(N, A, 4)`` box deltas.
        anchors (Tensor): ``(A, 4)`` anchors of the input size.
        bbox_coder: The head's box coder.
        img_shape (Tensor): ``(N, 2)`` height, width of each resized image
            (before padding): boxes are clipped to it, as mmdet clips.
        scale_factor (Tensor): ``(N, 2)`` width, height scale of the
            resize, mmdet's ``scale_factor``.
        nms_pre, score_thr, iou_threshold, max_per_img: ``test_cfg``'s.

    Returns:
        tuple: ``dets`` ``(N, M, 4)`` (``x1, y1, x2, y2``), ``scores``
        ``(N, M)``, ``labels`` ``(N, M)`` (int64) and ``num_dets`` ``(N,)``
        with ``M = max_per_img``, best first.
    """
    n, num_anchors, num_classes = logits.shape
    total = num_anchors * num_classes
    k = total if nms_pre <= 0 else min(nms_pre, total)
    top, anchor, labels = top_pairs(logits, k)
    scores = top.sigmoid()
    picked = deltas.gather(1, anchor.unsqueeze(-1).expand(-1, -1, 4))
    boxes = bbox_coder.decode(anchors[anchor], picked, max_shape=None)
    height = img_shape[:, 0].reshape(n, 1)
    width = img_shape[:, 1].reshape(n, 1)
    x1 = torch.minimum(boxes[..., 0].clamp(min=0), width)
    y1 = torch.minimum(boxes[..., 1].clamp(min=0), height)
    x2 = torch.minimum(boxes[..., 2].clamp(min=0), width)
    y2 = torch.minimum(boxes[..., 3].clamp(min=0), height)
    scale = scale_factor.reshape(n, 1, 2).repeat(1, 1, 2)
    boxes = torch.stack([x1, y1, x2, y2], -1) / scale

    offset = boxes.reshape(n, -1).max(dim=1).values.reshape(n, 1, 1) + 1
    apart = boxes + labels.unsqueeze(-1).to(boxes.dtype) * offset
    keep_max = min(max_per_img, k) if max_per_img > 0 else k
    selected = OnnxNonMaxSuppression.apply(
        apart, scores.unsqueeze(1), keep_max, iou_threshold, score_thr
    )
    image, box = selected[:, 0], selected[:, 2]
    table = torch.full_like(scores, -1.0)
    table[image, box] = scores[image, box]
    best, order = table.topk(keep_max, dim=1)
    valid = best >= 0
    dets = boxes.gather(1, order.unsqueeze(-1).expand(-1, -1, 4))
    dets = dets * valid.unsqueeze(-1).to(dets.dtype)
    labels = torch.where(
        valid, labels.gather(1, order), torch.full_like(order, -1)
    )
    return dets, best.clamp(min=0), labels, valid.sum(1)
