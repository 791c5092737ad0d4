"""COCO mAP of an exported model on the config's test set.

    python tools/deploy/test_onnx.py CONFIG MODEL.onnx [--threads N]
        [--limit N] [--cfg-options k=v ...] [--json OUT.json]

Runs MODEL.onnx (``export_onnx.py --nms`` or ``--decode``) in onnxruntime
through ``mmdet_efficientdet/deploy/ort_runner.py`` - the preprocessing,
network and post-processing that ship - on every image of the config's
``test_dataloader`` and scores the detections with its
``test_evaluator``, as ``tools/test.py`` scores a checkpoint.
"""

import argparse
import json
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmdet_efficientdet.deploy.onnx_eval import evaluate_onnx
from mmdet_efficientdet.engine.cli import find_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file (or packaged name)')
    parser.add_argument('model', help='.onnx file')
    parser.add_argument('--threads', type=int, help='onnxruntime threads')
    parser.add_argument('--limit', type=int, help='only the first N images')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='key=value'
    )
    parser.add_argument('--json', help='also write the metrics here')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(find_config(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    metrics = evaluate_onnx(
        cfg, args.model, args.threads, args.limit, log_every=50
    )
    for key, value in metrics.items():
        digits = 1 if key == 'ms_per_image' else 4
        print(f'{key}: {value:.{digits}f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(metrics, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
