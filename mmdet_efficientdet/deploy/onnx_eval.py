"""The COCO metric of an exported model: the mAP of what is shipped.

Every image of the config's test set goes through
:class:`~.ort_runner.OrtDetector` - its preprocessing, the ``.onnx`` and
its post-processing - and the detections through the config's
``test_evaluator`` (mmdet's ``CocoMetric``), as ``tools/test.py`` scores a
checkpoint.
"""

import sys
import time
from typing import Callable, Dict, Optional, Union

import torch
from mmdet.registry import DATASETS, METRICS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from .ort_runner import OrtDetector


def build_test_set(cfg: Config, split: str = 'test'):
    """The config's ``<split>_dataloader`` dataset (no pipeline run)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return DATASETS.build(cfg[f'{split}_dataloader'].dataset)


def evaluate_onnx(
    cfg: Config,
    model: Union[str, Callable],
    threads: Optional[int] = None,
    limit: Optional[int] = None,
    log_every: int = 0,
) -> Dict[str, float]:
    """COCO metrics of ``model`` on the config's test set.

    Args:
        cfg (Config): Config with ``test_dataloader`` and
            ``test_evaluator``.
        model (str | callable): ``.onnx`` written with ``--nms`` or
            ``--decode``, or a callable as :class:`~.ort_runner.OrtDetector`
            (image path -> boxes, scores, labels).
        threads (int, optional): onnxruntime intra-op threads.
        limit (int, optional): Only the first ``limit`` images.
        log_every (int): Print progress every so many images (0: never).

    Returns:
        dict: The evaluator's metrics (``coco/bbox_mAP``, ...) and
        ``ms_per_image`` (preprocessing, network and post-processing,
        image decoding included).
    """
    dataset = build_test_set(cfg)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    detector = OrtDetector(model, threads) if isinstance(model, str) else model
    count = len(dataset) if limit is None else min(limit, len(dataset))
    elapsed = 0.0
    for i in range(count):
        info = dataset.get_data_info(i)
        start = time.perf_counter()
        boxes, scores, labels = detector(info['img_path'])
        elapsed += time.perf_counter() - start
        sample = dict(
            img_id=info['img_id'],
            ori_shape=(info['height'], info['width']),
            pred_instances=dict(
                bboxes=torch.from_numpy(boxes),
                scores=torch.from_numpy(scores),
                labels=torch.from_numpy(labels),
            ),
        )
        metric.process({}, [sample])
        if log_every and (i + 1) % log_every == 0:
            print(f'{i + 1} / {count} images', file=sys.stderr, flush=True)
    results = metric.evaluate(count)
    results['ms_per_image'] = 1000 * elapsed / max(count, 1)
    return results
