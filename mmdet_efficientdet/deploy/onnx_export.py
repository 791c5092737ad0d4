"""ONNX export of a detector's network, and its check with onnxruntime.

The exported graph is the network at one static input shape: normalised
images in, per-anchor outputs of every level out, concatenated finest level
first in mmdet's anchor order (row, column, anchor):

- raw: ``cls_logits`` ``(N, A, num_classes)`` and ``box_deltas``
  ``(N, A, 4)``;
- with ``decode=True``: ``scores`` (sigmoid of the logits) and ``boxes``
  ``(N, A, 4)``, ``x1, y1, x2, y2`` in input pixels, decoded by the head's
  own box coder against anchors computed once for the input size.

Score thresholding and NMS are left to the runtime, where every engine has
its own operator. TF "SAME" padding is fixed for the export size first
(:func:`~.static_padding.static_same_padding`; the outputs do not change):
computed from traced shapes, it would not be static.
"""

import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .static_padding import static_same_padding

DEFAULT_OPSET = 17


class DetectorExport(nn.Module):
    """A single-stage mmdet detector as ``images -> (scores, boxes)``.

    The detector's SAME padding is fixed for ``input_shape`` in place.

    Args:
        detector (nn.Module): Detector with ``backbone``, optional
            ``neck`` and a ``bbox_head`` of mmdet's anchor-head family.
        input_shape (Sequence[int]): ``(N, C, H, W)`` of the export.
        decode (bool): Output scores and decoded boxes instead of logits
            and deltas.
    """

    def __init__(
        self,
        detector: nn.Module,
        input_shape: Sequence[int],
        decode: bool = False,
    ) -> None:
        super().__init__()
        self.detector = detector
        self.decode = decode
        self.input_shape = tuple(input_shape)
        head = detector.bbox_head
        self.num_classes = head.cls_out_channels
        self.box_size = head.bbox_coder.encode_size
        param = next(detector.parameters())
        example = torch.zeros(
            self.input_shape, dtype=param.dtype, device=param.device
        )
        counts = static_same_padding(
            detector, lambda: detector.extract_feat(example)
        )
        if counts['kept']:
            raise ValueError(
                f'{counts["kept"]} padded layers need several paddings at '
                f'input {self.input_shape}; they cannot be exported static'
            )
        if decode:
            with torch.no_grad():
                feats = detector.extract_feat(example)
            anchors = head.prior_generator.grid_priors(
                [f.shape[-2:] for f in feats], device=param.device
            )
            self.register_buffer('anchors', torch.cat(anchors), False)

    @property
    def output_names(self) -> List[str]:
        return (
            ['scores', 'boxes']
            if self.decode
            else [
                'cls_logits',
                'box_deltas',
            ]
        )

    def _flatten(self, maps: Sequence[Tensor], channels: int) -> Tensor:
        n = maps[0].shape[0]
        return torch.cat(
            [m.permute(0, 2, 3, 1).reshape(n, -1, channels) for m in maps],
            dim=1,
        )

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        head = self.detector.bbox_head
        cls_maps, box_maps = head(self.detector.extract_feat(images))
        logits = self._flatten(cls_maps, self.num_classes)
        deltas = self._flatten(box_maps, self.box_size)
        if not self.decode:
            return logits, deltas
        n = images.shape[0]
        # clipped here, not by the coder: mmdet 3.3's ONNX branch of the
        # clipping imports the removed mmdet.core
        boxes = head.bbox_coder.decode(
            self.anchors.expand(n, -1, -1), deltas, max_shape=None
        )
        height, width = self.input_shape[-2:]
        x = boxes[..., 0::2].clamp(0, width)
        y = boxes[..., 1::2].clamp(0, height)
        boxes = torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)
        return logits.sigmoid(), boxes


def export_onnx(
    wrapper: DetectorExport, path: str, opset: int = DEFAULT_OPSET
) -> str:
    """Write ``wrapper`` to ``path`` as ONNX (static shapes); return path."""
    if opset < DEFAULT_OPSET:
        raise ValueError(f'opset must be >= {DEFAULT_OPSET}, got {opset}')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    param = next(wrapper.parameters())
    example = torch.zeros(
        wrapper.input_shape, dtype=param.dtype, device=param.device
    )
    wrapper.eval()
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (example,),
            path,
            input_names=['images'],
            output_names=wrapper.output_names,
            opset_version=opset,
            dynamo=False,
        )
    return path


def compare_with_onnxruntime(
    wrapper: DetectorExport, path: str, images: Tensor
) -> Dict[str, float]:
    """Largest absolute difference of each output, PyTorch vs onnxruntime.

    Decoded ``boxes`` differ in pixels; theirs is divided by the input
    size (the largest side).

    Raises:
        ImportError: When onnxruntime is not installed.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        expected = wrapper(images)
    got = session.run(None, {'images': images.cpu().numpy()})
    diffs = {
        name: float(np.abs(ref.cpu().numpy() - out).max())
        for name, ref, out in zip(wrapper.output_names, expected, got)
    }
    if 'boxes' in diffs:
        # pixels: float32 resolves ~1e-5 of a coordinate's size, so boxes
        # are compared as a fraction of the input size
        diffs['boxes'] /= max(wrapper.input_shape[-2:])
    return diffs
