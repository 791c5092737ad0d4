"""Export a detector's network to ONNX and check it with onnxruntime.

    python tools/deploy/export_onnx.py CONFIG [CHECKPOINT] --out MODEL.onnx
        [--size 512 | --shape H W] [--batch 1] [--decode | --nms | --levels]
        [--deploy] [--opset 17] [--no-check] [--atol 1e-4]

The graph has one static input ``images`` ``(N, 3, H, W)`` (normalised as
the config's data preprocessor does: mean / std, RGB) and two outputs, one
row per anchor of every level (mmdet's anchor order): ``cls_logits``
``(N, A, classes)`` and ``box_deltas`` ``(N, A, 4)``, or with ``--decode``
``scores`` (sigmoid) and ``boxes`` (``x1, y1, x2, y2`` in input pixels),
or with ``--levels`` the head's maps of every level unflattened,
``cls_logits_<l>`` ``(N, anchors * classes, H_l, W_l)`` and
``box_deltas_<l>``, for runtimes that decode level by level.
With ``--nms`` the graph ends in the head's post-processing (ONNX
``NonMaxSuppression`` with the config's ``test_cfg``): inputs ``images``,
``img_shape`` and ``scale_factor`` ``(N, 2)``, outputs ``dets``
``(N, max_per_img, 4)`` in original-image pixels, ``scores``, ``labels``
and ``num_dets`` (``mmdet_efficientdet.deploy.onnx_nms``). The config's
preprocessing and ``test_cfg`` go into the file's metadata, which
``mmdet_efficientdet/deploy/ort_runner.py`` reads. ``--deploy`` exports
the deployment form (``mmdet_efficientdet.deploy.prepare_for_deploy``: BN
folded into the convs, static SAME padding): fewer nodes, same outputs.

After writing, the model runs in onnxruntime on a random batch and every
output is compared with PyTorch's; the tool fails (exit 1) when the largest
difference exceeds ``--atol``. Without a checkpoint the model keeps its
random initialisation (useful to check a config exports).
"""

import argparse
import os.path as osp
import sys
from typing import List, Optional

import torch
from mmdet.apis import init_detector

from mmdet_efficientdet.deploy import prepare_for_deploy
from mmdet_efficientdet.deploy.onnx_export import (
    DEFAULT_OPSET,
    DetectorExport,
    compare_with_onnxruntime,
    export_onnx,
    nms_settings,
)
from mmdet_efficientdet.deploy.onnx_meta import deploy_metadata


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file')
    parser.add_argument('--out', required=True, help='output .onnx file')
    size = parser.add_mutually_exclusive_group()
    size.add_argument('--size', type=int, help='square input size')
    size.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    post = parser.add_mutually_exclusive_group()
    post.add_argument(
        '--decode', action='store_true', help='output scores and boxes'
    )
    post.add_argument(
        '--nms', action='store_true', help='output the final detections'
    )
    post.add_argument(
        '--levels',
        action='store_true',
        help='output the raw maps of every level, unflattened',
    )
    parser.add_argument(
        '--deploy', action='store_true', help='fold BN, static padding'
    )
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument(
        '--no-check', action='store_true', help='skip onnxruntime'
    )
    parser.add_argument('--atol', type=float, default=1e-4)
    args = parser.parse_args(argv)
    if args.opset < DEFAULT_OPSET:
        parser.error(f'--opset must be >= {DEFAULT_OPSET}')
    if args.batch < 1:
        parser.error('--batch must be >= 1')
    for path, what in [(args.config, 'config'), (args.checkpoint, 'ckpt')]:
        if path is not None and not osp.isfile(path):
            parser.error(f'{what} file {path!r} not found')
    return args


def input_shape(args: argparse.Namespace, cfg) -> tuple:
    if args.shape:
        h, w = args.shape
    elif args.size:
        h = w = args.size
    elif cfg.get('efficientdet'):
        h = w = cfg.efficientdet['image_size']
    else:
        raise ValueError(
            f'{args.config} does not state its input size (no '
            f'`efficientdet` entry): pass --size or --shape'
        )
    return (args.batch, 3, h, w)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    model = init_detector(args.config, args.checkpoint, device='cpu')
    shape = input_shape(args, model.cfg)
    if args.deploy:
        report = prepare_for_deploy(model, shape)
        print(f'deploy: {report}')
    nms = nms_settings(model.bbox_head.test_cfg, hard_only=args.nms)
    wrapper = DetectorExport(
        model,
        shape,
        decode=args.decode,
        nms=nms if args.nms else None,
        levels=args.levels,
    ).eval()
    classes = (model.dataset_meta or {}).get('classes')
    meta = deploy_metadata(model.cfg, shape, wrapper.kind, nms, classes)
    export_onnx(wrapper, args.out, args.opset, metadata=meta)
    print(f'wrote {args.out}: input images {shape}, opset {args.opset}')
    if args.no_check:
        return 0
    images = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    diffs = compare_with_onnxruntime(wrapper, args.out, images)
    worst = max(diffs.values())
    for name, diff in diffs.items():
        boxes = name in ('boxes', 'dets')
        unit = ' (fraction of the input size)' if boxes else ''
        print(
            f'onnxruntime vs PyTorch, {name}: max abs difference '
            f'{diff:.2e}{unit}'
        )
    if worst > args.atol:
        print(
            f'FAILED: difference {worst:.2e} exceeds --atol {args.atol:g}',
            file=sys.stderr,
        )
        return 1
    print(f'check passed (atol {args.atol:g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
