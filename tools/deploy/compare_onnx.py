"""Detections of an exported model against mmdet's predict, image by image.

    python tools/deploy/compare_onnx.py CONFIG CHECKPOINT MODEL.onnx
        [--limit N] [--threads N] [--cfg-options k=v ...]

For every image of the config's test set (or the first ``--limit``) it
runs the checkpoint through mmdet's ``inference_detector`` and MODEL.onnx
through ``mmdet_efficientdet/deploy/ort_runner.py``, and pairs the
detections one to one: same label, scores within ``--score-tol``, boxes
within ``--box-tol`` of the image size. Detections whose scores agree to
float rounding (a tie) may come in either order, so a pair is looked for
among them, not only in the same row. It reports how many images pair
completely (and how many also in the same order), the largest score and
box differences of the pairs, and exits 1 unless every image pairs.
"""

import argparse
import sys
from typing import List, Optional, Tuple

import numpy as np
from mmdet.apis import inference_detector, init_detector
from mmengine.config import DictAction

from mmdet_efficientdet.deploy.onnx_eval import build_test_set
from mmdet_efficientdet.deploy.ort_runner import OrtDetector, read_image


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('model', help='.onnx (--nms or --decode)')
    parser.add_argument('--limit', type=int, help='only the first N images')
    parser.add_argument('--threads', type=int, help='onnxruntime threads')
    parser.add_argument('--score-tol', type=float, default=1e-4)
    parser.add_argument('--box-tol', type=float, default=1e-3)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='key=value'
    )
    return parser.parse_args(argv)


def pair_detections(
    ref: Tuple[np.ndarray, ...],
    got: Tuple[np.ndarray, ...],
    score_tol: float,
    box_tol: float,
) -> Optional[Tuple[float, float, bool]]:
    """Pair ``got`` with ``ref`` (boxes, scores, labels) one to one.

    Returns the largest score and box differences of the pairs and
    whether every pair is in the same row, or None when some detection
    finds no partner.
    """
    ref_boxes, ref_scores, ref_labels = ref
    boxes, scores, labels = got
    if len(scores) != len(ref_scores):
        return None
    free = np.ones(len(ref_scores), bool)
    worst_score = worst_box = 0.0
    in_order = True
    for i in range(len(scores)):
        score_diff = np.abs(ref_scores - scores[i])
        box_diff = np.abs(ref_boxes - boxes[i]).max(1)
        ok = (
            free
            & (ref_labels == labels[i])
            & (score_diff <= score_tol)
            & (box_diff <= box_tol)
        )
        if not ok.any():
            return None
        j = i if ok[i] else int(np.flatnonzero(ok)[0])
        free[j] = False
        in_order &= j == i
        worst_score = max(worst_score, float(score_diff[j]))
        worst_box = max(worst_box, float(box_diff[j]))
    return worst_score, worst_box, in_order


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    model = init_detector(
        args.config,
        args.checkpoint,
        device='cpu',
        cfg_options=args.cfg_options,
    )
    dataset = build_test_set(model.cfg)
    detector = OrtDetector(args.model, args.threads)
    count = len(dataset) if args.limit is None else args.limit
    total = min(count, len(dataset))
    paired = ordered = detections = 0
    worst_score = worst_box = 0.0
    for i in range(total):
        image = read_image(dataset.get_data_info(i)['img_path'])
        ref = inference_detector(model, image).pred_instances
        boxes, scores, labels = detector(image)
        size = max(image.shape[:2])
        result = pair_detections(
            (
                ref.bboxes.numpy() / size,
                ref.scores.numpy(),
                ref.labels.numpy(),
            ),
            (boxes / size, scores, labels),
            args.score_tol,
            args.box_tol,
        )
        detections += len(ref)
        if result is None:
            continue
        paired += 1
        ordered += result[2]
        worst_score = max(worst_score, result[0])
        worst_box = max(worst_box, result[1])
    print(
        f'{paired} / {total} images: every detection paired with '
        f"mmdet's ({detections} in all; {ordered} images in the same "
        f'order); largest score difference {worst_score:.2e}, largest box '
        f'difference {worst_box:.2e} of the image size'
    )
    return 0 if paired == total else 1


if __name__ == '__main__':
    sys.exit(main())
