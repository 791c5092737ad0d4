"""Detections of an exported model against mmdet's predict, image by image.

    python tools/deploy/compare_onnx.py CONFIG CHECKPOINT MODEL.onnx
        [--limit N] [--threads N] [--cfg-options k=v ...]

For every image of the config's test set (or the first ``--limit``) it
runs the checkpoint through mmdet's ``inference_detector`` and MODEL.onnx
through ``mmdet_efficientdet/deploy/ort_runner.py``, and reports how many
images give the same number of detections with equal labels, the largest
score difference and the largest box difference as a fraction of the
image size. Exit 1 when an image differs by more than ``--score-tol`` /
``--box-tol`` or in its labels.
"""

import argparse
import sys
from typing import List, Optional

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
    same, worst_score, worst_box, detections = 0, 0.0, 0.0, 0
    for i in range(min(count, len(dataset))):
        image = read_image(dataset.get_data_info(i)['img_path'])
        ref = inference_detector(model, image).pred_instances
        boxes, scores, labels = detector(image)
        detections += len(ref)
        if len(ref) != len(scores) or not np.array_equal(
            labels, ref.labels.numpy()
        ):
            continue
        if len(ref):
            worst_score = max(
                worst_score, float(np.abs(scores - ref.scores.numpy()).max())
            )
            box = np.abs(boxes - ref.bboxes.numpy()).max() / max(image.shape)
            worst_box = max(worst_box, float(box))
        same += 1
    total = min(count, len(dataset))
    print(
        f'{same} / {total} images: same detections and labels '
        f'({detections} detections); largest score difference '
        f'{worst_score:.2e}, largest box difference {worst_box:.2e} of '
        f'the image size'
    )
    ok = (
        same == total
        and worst_score <= args.score_tol
        and worst_box <= args.box_tol
    )
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
