"""Detect objects with an exported model in onnxruntime and draw them.

    python tools/deploy/ort_demo.py IMAGE MODEL.onnx --out OUT.jpg
        [--score-thr 0.3] [--threads N]

Needs numpy, onnxruntime and OpenCV only (no torch, no mmdet): it loads
``mmdet_efficientdet/deploy/ort_runner.py`` as a file. MODEL.onnx is an
export with ``--nms`` (or ``--decode``) of ``tools/deploy/export_onnx.py``;
the preprocessing, thresholds and class names come from its metadata.
"""

import argparse
import importlib.util
import os.path as osp
import sys
from typing import List, Optional

RUNNER = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    'mmdet_efficientdet',
    'deploy',
    'ort_runner.py',
)


def load_runner():
    spec = importlib.util.spec_from_file_location('ort_runner', RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image', help='image file')
    parser.add_argument('model', help='.onnx exported with --nms')
    parser.add_argument('--out', required=True, help='output image file')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='drawing threshold'
    )
    parser.add_argument('--threads', type=int, help='onnxruntime threads')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    import cv2

    args = parse_args(argv)
    runner = load_runner()
    detector = runner.OrtDetector(args.model, args.threads)
    image = runner.read_image(args.image)
    boxes, scores, labels = detector(image)
    names = detector.classes
    shown = 0
    for box, score, label in zip(boxes, scores, labels):
        if score < args.score_thr:
            continue
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        name = names[label] if names else str(label)
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 200, 255), 2)
        cv2.putText(
            image,
            f'{name} {score:.2f}',
            (x1, max(y1 - 3, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 200, 255),
            1,
        )
        print(f'{name}: {score:.3f} at {[round(float(v), 1) for v in box]}')
        shown += 1
    if not cv2.imwrite(args.out, image):
        print(f'could not write {args.out!r}', file=sys.stderr)
        return 1
    print(f'{shown} of {len(scores)} detections drawn to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
