"""What a runner needs besides the graph, written into the ONNX file.

The config's test pipeline and data preprocessor decide how an image
becomes the graph's input; its ``test_cfg`` how outputs become detections.
:func:`deploy_metadata` collects both as ``metadata_props`` (string keys,
JSON values), so that :mod:`.ort_runner` needs only the ``.onnx``:

- ``input_size``: ``[H, W]`` of the graph's input;
- ``keep_ratio``: the test pipeline's ``Resize`` keeps the aspect ratio
  (mmcv's ``imrescale``: scaled to fit ``input_size``), else stretches;
- ``pad_size`` / ``pad_val``: the pipeline's ``Pad`` (pixels, before
  normalisation), ``pad_value``: the preprocessor's (after it);
- ``mean``, ``std``, ``bgr_to_rgb``: the data preprocessor's;
- ``outputs``: ``raw``, ``levels`` (raw, per level), ``decoded`` or
  ``detections`` (NMS in the graph);
- ``nms_pre``, ``score_thr``, ``iou_threshold``, ``max_per_img``: the
  head's ``test_cfg``; ``classes``: the class names.
"""

import json
from typing import Dict, Optional, Sequence

META_VERSION = 1


def _find(pipeline: Sequence[dict], kinds: Sequence[str]) -> Optional[dict]:
    for step in pipeline:
        if step.get('type') in kinds:
            return step
        for inner in step.get('transforms', []):  # TestTimeAug, ...
            if isinstance(inner, dict):
                found = _find([inner], kinds)
                if found is not None:
                    return found
    return None


def _pipeline(cfg) -> Sequence[dict]:
    loader = cfg.get('test_dataloader') or {}
    dataset = loader.get('dataset') or {}
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']  # dataset wrappers
    return dataset.get('pipeline') or cfg.get('test_pipeline') or []


def deploy_metadata(
    cfg,
    input_shape: Sequence[int],
    outputs: str,
    nms: dict,
    classes: Optional[Sequence[str]] = None,
) -> Dict[str, str]:
    """The ``metadata_props`` of an export of ``cfg`` at ``input_shape``.

    Args:
        cfg: The detector's config (mmengine ``Config``).
        input_shape (Sequence[int]): ``(N, C, H, W)`` of the export.
        outputs (str): ``'raw'``, ``'levels'``, ``'decoded'`` or
            ``'detections'``.
        nms (dict): ``nms_pre``, ``score_thr``, ``iou_threshold``,
            ``max_per_img`` (:func:`~.onnx_export.nms_settings`).
        classes (Sequence[str], optional): Class names.
    """
    pipeline = _pipeline(cfg)
    resize = _find(pipeline, ('Resize', 'FixScaleResize')) or {}
    pad = _find(pipeline, ('Pad',)) or {}
    pad_val = pad.get('pad_val', 0)
    if isinstance(pad_val, dict):
        pad_val = pad_val.get('img', 0)
    pad_size = pad.get('size')  # mmdet's (w, h)
    preprocessor = cfg.model.get('data_preprocessor') or {}
    height, width = input_shape[-2:]
    meta = dict(
        version=META_VERSION,
        input_size=[height, width],
        keep_ratio=bool(resize.get('keep_ratio', True)),
        pad_size=None if pad_size is None else [pad_size[1], pad_size[0]],
        pad_val=float(pad_val),
        pad_value=float(preprocessor.get('pad_value', 0)),
        mean=[float(v) for v in preprocessor.get('mean', [0, 0, 0])],
        std=[float(v) for v in preprocessor.get('std', [1, 1, 1])],
        bgr_to_rgb=bool(preprocessor.get('bgr_to_rgb', False)),
        outputs=outputs,
        classes=list(classes) if classes else None,
        **nms,
    )
    return {key: json.dumps(value) for key, value in meta.items()}
