"""Static int8 quantization (QDQ) of an exported model, with its cost and
gain: size, latency and, with ``--eval``, COCO mAP before and after.

    python tools/deploy/quantize_onnx.py CONFIG MODEL.onnx --out INT8.onnx
        [--calib 64] [--method percentile|minmax|entropy]
        [--full-range] [--eval] [--threads 2] [--reps 30] [--limit N]
        [--cfg-options k=v ...]

MODEL.onnx is an export of ``tools/deploy/export_onnx.py`` (``--deploy``
recommended; ``--nms`` or ``--decode`` for the runner and ``--eval``).
Activation ranges are calibrated on ``--calib`` images of the config's
training set, spread evenly over it, preprocessed as at inference;
weights are int8 per output channel (7-bit unless ``--full-range``: x86
CPUs without VNNI saturate on 8-bit ones), activations uint8, the
post-processing stays float (``mmdet_efficientdet.deploy.onnx_quantize``,
which also unties the head's shared conv weights for the quantizer).
Latency is onnxruntime's ``run`` at batch 1 (median of ``--reps``, float
and int8 interleaved) on a calibration image; ``--eval`` scores both
models on the test set as ``tools/deploy/test_onnx.py`` does.
"""

import argparse
import os
import statistics
import sys
import time
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmdet_efficientdet.deploy.onnx_eval import build_test_set, evaluate_onnx
from mmdet_efficientdet.deploy.onnx_quantize import quantize_int8
from mmdet_efficientdet.deploy.ort_runner import OrtDetector
from mmdet_efficientdet.engine.cli import find_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file (or packaged name)')
    parser.add_argument('model', help='float .onnx')
    parser.add_argument('--out', required=True, help='int8 .onnx to write')
    parser.add_argument(
        '--calib', type=int, default=64, help='calibration images'
    )
    parser.add_argument(
        '--method',
        choices=['minmax', 'percentile', 'entropy'],
        default='percentile',
    )
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        '--full-range',
        dest='reduce_range',
        action='store_false',
        help='8-bit weights: only for CPUs with VNNI or ARM dot product; '
        'x86 CPUs without VNNI saturate on them',
    )
    weights.add_argument(
        '--reduce-range',
        dest='reduce_range',
        action='store_true',
        help='7-bit weights, runs accurately on any CPU (the default)',
    )
    parser.set_defaults(reduce_range=True)
    parser.add_argument('--eval', action='store_true', help='COCO mAP')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--reps', type=int, default=30)
    parser.add_argument('--limit', type=int, help='--eval on N images')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='key=value'
    )
    args = parser.parse_args(argv)
    if args.calib < 1 or args.reps < 1:
        parser.error('--calib and --reps must be >= 1')
    if not os.path.isfile(args.model):
        parser.error(f'model file {args.model!r} not found')
    return args


def calibration_images(cfg: Config, count: int) -> List[str]:
    """``count`` image paths spread evenly over the training set."""
    dataset = build_test_set(cfg, 'train')
    step = max(len(dataset) // count, 1)
    indices = list(range(0, len(dataset), step))[:count]
    return [dataset.get_data_info(i)['img_path'] for i in indices]


def latencies(models: dict, image: str, reps: int, threads: int) -> dict:
    """Median ms of one ``session.run`` per model, interleaved."""
    runs = {}
    for name, path in models.items():
        # threads spin during a call only: spinning on after it (the
        # default) would take the cores from the other model's call
        detector = OrtDetector(path, threads, spinning='in-run')
        inputs = detector.preprocess(image)
        runs[name] = lambda d=detector, x=inputs: d.run(*x)
        runs[name]()
    times = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(find_config(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    images = calibration_images(cfg, args.calib)
    start = time.perf_counter()
    quantize_int8(args.model, args.out, images, args.method, args.reduce_range)
    print(
        f'wrote {args.out}: {len(images)} calibration images, '
        f'{args.method}, {time.perf_counter() - start:.0f} s'
    )
    models = {'fp32': args.model, 'int8': args.out}
    rows = {
        'size (MB)': {k: os.path.getsize(v) / 1e6 for k, v in models.items()}
    }
    rows[f'latency, {args.threads} threads (ms)'] = latencies(
        models, images[0], args.reps, args.threads
    )
    if args.eval:
        for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50'):
            rows[key] = {}
        for name, path in models.items():
            metrics = evaluate_onnx(cfg, path, args.threads, args.limit)
            for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50'):
                rows[key][name] = metrics[key]
    print('| measure | fp32 | int8 |')
    print('|---|---|---|')
    for measure, values in rows.items():
        digits = 3 if measure.startswith('coco') else 1
        cells = ' | '.join(f'{values[k]:.{digits}f}' for k in models)
        print(f'| {measure} | {cells} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
