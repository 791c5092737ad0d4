"""ONNX export of a detector's network, and its check with onnxruntime.

The exported graph is the network at one static input shape: normalised
images in, per-anchor outputs of every level out, concatenated finest level
first in mmdet's anchor order (row, column, anchor):

- raw: ``cls_logits`` ``(N, A, num_classes)`` and ``box_deltas``
  ``(N, A, 4)``;
- with ``levels=True``: the head's own per-level maps, unflattened,
  ``cls_logits_<l>`` ``(N, anchors * num_classes, H_l, W_l)`` for every
  level ``l``, then ``box_deltas_<l>`` - what the network computes
  (mmdet's ``_forward``, effdet's ``forward``), for runtimes that decode
  per level; the flattening costs onnxruntime a copy of every output
  (CPU, fp32: Lite0 and D0 5%, ``docs/deployment.md``);
- with ``decode=True``: ``scores`` (sigmoid of the logits) and ``boxes``
  ``(N, A, 4)``, ``x1, y1, x2, y2`` in input pixels, decoded by the head's
  own box coder against anchors computed once for the input size;
- with ``nms`` (the head's ``test_cfg``): the final detections, as
  ``predict`` gives them (:mod:`.onnx_nms`); two more inputs,
  ``img_shape`` and ``scale_factor`` ``(N, 2)``, say where the resized
  image lies in the input and how to scale boxes back to the original.

Without ``nms``, score thresholding and NMS are left to the runtime. The
preprocessing and post-processing parameters go into the file's metadata
(:mod:`.onnx_meta`), so that a runner needs only the file. TF "SAME"
padding is fixed for the export size first
(:func:`~.static_padding.static_same_padding`; the outputs do not
change): computed from traced shapes, it would not be static; its
asymmetric case is then written as ONNX ``Conv`` pads
(:func:`~.onnx_padding.asymmetric_conv_padding`), and weighted BiFPN
fusion and squeeze-excitation in forms that onnxruntime's CPU layout
keeps (:func:`~.onnx_layout.nchwc_friendly`; same numbers); after the
export, the BiFPN's upsampling gets constant scales
(:func:`~.onnx_resize.static_resize`; same numbers).
"""

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from .onnx_layout import nchwc_friendly
from .onnx_nms import detections
from .onnx_padding import asymmetric_conv_padding
from .onnx_resize import static_resize
from .static_padding import static_same_padding

DEFAULT_OPSET = 17


class LevelFlatten(nn.Module):
    """Per-level ``(N, C, H, W)`` maps as one ``(N, sum(H * W * A), C / A)``
    in mmdet's anchor order (row, column, anchor), finest level first.

    A module of its own so that its nodes are named ``/flatten...`` in
    the export: int8 quantization keeps them in uint8
    (:mod:`.onnx_quantize`), one ``QLinearConcat`` and one dequantization
    per output instead of one dequantization per map and a float concat.
    """

    def forward(self, maps: Sequence[Tensor], channels: int) -> Tensor:
        n = maps[0].shape[0]
        return torch.cat(
            [m.permute(0, 2, 3, 1).reshape(n, -1, channels) for m in maps],
            dim=1,
        )


class DetectorExport(nn.Module):
    """A single-stage mmdet detector as ``images -> (scores, boxes)``.

    The detector is rewritten in place for the export (same outputs):
    SAME padding fixed for ``input_shape``, its asymmetric case as one
    padded conv (:class:`~.onnx_padding.AsymmetricPadConv2d`), weighted
    fusion and squeeze-excitation as :func:`~.onnx_layout.nchwc_friendly`
    writes them.

    Args:
        detector (nn.Module): Detector with ``backbone``, optional
            ``neck`` and a ``bbox_head`` of mmdet's anchor-head family.
        input_shape (Sequence[int]): ``(N, C, H, W)`` of the export.
        decode (bool): Output scores and decoded boxes instead of logits
            and deltas.
        levels (bool): Output the per-level maps of logits and deltas
            instead of their flattening (not with ``decode`` / ``nms``).
        nms (dict, optional): ``nms_pre``, ``score_thr``,
            ``iou_threshold`` and ``max_per_img``: output the final
            detections (see :func:`nms_settings`).
    """

    def __init__(
        self,
        detector: nn.Module,
        input_shape: Sequence[int],
        decode: bool = False,
        nms: Optional[dict] = None,
        levels: bool = False,
    ) -> None:
        super().__init__()
        if levels and (decode or nms is not None):
            raise ValueError(
                'levels=True outputs the raw per-level maps: it cannot be '
                'combined with decode or nms'
            )
        self.detector = detector
        self.nms = None if nms is None else dict(nms)
        self.decode = decode or self.nms is not None
        self.levels = levels
        self.input_shape = tuple(input_shape)
        head = detector.bbox_head
        self.num_levels = head.prior_generator.num_levels
        self.num_classes = head.cls_out_channels
        self.box_size = head.bbox_coder.encode_size
        self.flatten = LevelFlatten()
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
        asymmetric_conv_padding(detector)
        nchwc_friendly(detector)
        if self.decode:
            with torch.no_grad():
                feats = detector.extract_feat(example)
            anchors = head.prior_generator.grid_priors(
                [f.shape[-2:] for f in feats], device=param.device
            )
            self.register_buffer('anchors', torch.cat(anchors), False)

    @property
    def input_names(self) -> List[str]:
        if self.nms is None:
            return ['images']
        return ['images', 'img_shape', 'scale_factor']

    @property
    def kind(self) -> str:
        """What the graph outputs, as the file's metadata names it
        (:func:`~.onnx_meta.deploy_metadata`): ``'detections'``,
        ``'decoded'``, ``'levels'`` or ``'raw'``."""
        if self.nms is not None:
            return 'detections'
        if self.decode:
            return 'decoded'
        return 'levels' if self.levels else 'raw'

    @property
    def output_names(self) -> List[str]:
        if self.nms is not None:
            return ['dets', 'scores', 'labels', 'num_dets']
        if self.decode:
            return ['scores', 'boxes']
        if self.levels:
            return [
                f'{name}_{level}'
                for name in ('cls_logits', 'box_deltas')
                for level in range(self.num_levels)
            ]
        return ['cls_logits', 'box_deltas']

    def example_inputs(self, images: Tensor) -> Tuple[Tensor, ...]:
        """``images`` and, with ``nms``, unresized images' shape / scale."""
        if self.nms is None:
            return (images,)
        n = images.shape[0]
        size = images.new_tensor(self.input_shape[-2:])
        return images, size.expand(n, 2), images.new_ones(n, 2)

    def forward(
        self,
        images: Tensor,
        img_shape: Optional[Tensor] = None,
        scale_factor: Optional[Tensor] = None,
    ) -> Tuple[Tensor, ...]:
        head = self.detector.bbox_head
        cls_maps, box_maps = head(self.detector.extract_feat(images))
        if self.levels:
            return (*cls_maps, *box_maps)
        logits = self.flatten(cls_maps, self.num_classes)
        deltas = self.flatten(box_maps, self.box_size)
        if self.nms is not None:
            if img_shape is None or scale_factor is None:
                _, img_shape, scale_factor = self.example_inputs(images)
            return detections(
                logits,
                deltas,
                self.anchors,
                head.bbox_coder,
                img_shape,
                scale_factor,
                **self.nms,
            )
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


def nms_settings(test_cfg: dict, hard_only: bool = True) -> dict:
    """The arguments of :func:`~.onnx_nms.detections` from a head's
    ``test_cfg``; ``hard_only``: refuse other NMS (ONNX has no soft
    NMS)."""
    nms = test_cfg.get('nms') or {}
    kind = nms.get('type', 'nms')
    if hard_only and kind != 'nms':
        raise ValueError(
            f"NMS in the graph is ONNX's hard NMS; test_cfg.nms is "
            f'{kind!r} (export with --cfg-options '
            f'model.test_cfg.nms.type=nms, or without --nms)'
        )
    return dict(
        nms_pre=int(test_cfg.get('nms_pre', -1)),
        score_thr=float(test_cfg.get('score_thr', 0.0)),
        iou_threshold=float(nms.get('iou_threshold', 0.5)),
        max_per_img=int(test_cfg.get('max_per_img', 100)),
    )


def export_onnx(
    wrapper: DetectorExport,
    path: str,
    opset: int = DEFAULT_OPSET,
    metadata: Optional[Dict[str, str]] = None,
) -> str:
    """Write ``wrapper`` to ``path`` as ONNX (static shapes); return path.

    ``metadata`` (string keys and values) goes into the file's
    ``metadata_props``; see :func:`~.onnx_meta.deploy_metadata`.
    """
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
            wrapper.example_inputs(example),
            path,
            input_names=wrapper.input_names,
            output_names=wrapper.output_names,
            opset_version=opset,
            dynamo=False,
        )
    import onnx

    model = onnx.load(path)
    static_resize(model)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def _untied(scores: np.ndarray, gap: float = 1e-5) -> np.ndarray:
    """Mask of the ``(N, M)`` scores farther than ``gap`` from the other
    scores of their image."""
    ordered = np.sort(scores, axis=1)
    mask = np.zeros(scores.shape, bool)
    for i, row in enumerate(scores):
        pos = np.searchsorted(ordered[i], row)
        below = ordered[i][np.maximum(pos - 1, 0)]
        upper = np.minimum(pos + 1, len(row) - 1)
        above = ordered[i][upper]
        lone_below = (pos == 0) | (row - below > gap)
        lone_above = (pos + 1 >= len(row)) | (above - row > gap)
        mask[i] = lone_below & lone_above
    return mask


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
    inputs = wrapper.example_inputs(images)
    with torch.no_grad():
        expected = wrapper(*inputs)
    got = session.run(
        None,
        {k: v.cpu().numpy() for k, v in zip(wrapper.input_names, inputs)},
    )
    expected = [ref.cpu().numpy() for ref in expected]
    if wrapper.nms is not None:
        # which of two boxes of (nearly) one score NMS keeps, and in what
        # order, is down to rounding: boxes and labels are compared where
        # the score stands apart
        apart = _untied(expected[1])
        expected = [ref[apart] for ref in expected[:3]] + expected[3:]
        got = [out[apart] for out in got[:3]] + got[3:]
    diffs = {
        name: float(np.abs(ref - out).max()) if ref.size else 0.0
        for name, ref, out in zip(wrapper.output_names, expected, got)
    }
    for name in ('boxes', 'dets'):
        if name in diffs:
            # pixels: float32 resolves ~1e-5 of a coordinate's size, so
            # boxes are compared as a fraction of the input size
            diffs[name] /= max(wrapper.input_shape[-2:])
    return diffs
