"""Evaluate a checkpoint with MMEngine: mmdet's ``tools/test.py`` CLI.

python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RES.pkl]
    [--show-dir DIR] [--tta] [--cfg-options k=v ...] [--launcher pytorch]

CONFIG is a file, or a packaged config by name
(``mmdet_efficientdet::quickstart/efficientdet_lite0_1xb8-12e_shapes.py``).
``--tta`` evaluates the config's ``tta_model`` over its ``tta_pipeline``
(every EfficientDet config has a horizontal-flip one), as mmdet's does.
"""

import argparse
import os.path as osp
import warnings

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config, ConfigDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdet_efficientdet.engine import (
    adapt_launch,
    add_common_args,
    load_config,
    parse_common,
)
from mmdet_efficientdet.engine.checkpoint_check import check_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_common_args(parser)
    parser.add_argument(
        '--out', help='dump predictions to a pickle file (.pkl/.pickle)'
    )
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument(
        '--show-dir', help='save images with drawn predictions here'
    )
    parser.add_argument(
        '--wait-time', type=float, default=2, help='interval of --show (s)'
    )
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_model over its "
        'tta_pipeline',
    )
    return parse_common(parser)


def use_tta(cfg: Config) -> None:
    """Wrap the model in ``cfg.tta_model`` and test on ``cfg.tta_pipeline``
    (mmdet's ``--tta``; mmdet's default flip-NMS model when none is set)."""
    if 'tta_pipeline' not in cfg:
        raise ValueError(
            '--tta needs a tta_pipeline in the config (see '
            'configs/_base_/datasets/shapes_detection.py)'
        )
    if 'tta_model' not in cfg:
        warnings.warn(
            'no tta_model in the config: using DetTTAModel + NMS', stacklevel=2
        )
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100
            ),
        )
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def main() -> None:
    args = parse_args()
    setup_cache_size_limit_of_dynamo()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint file {args.checkpoint!r} not found'
        )
    check_checkpoint(args.checkpoint)
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.tta:
        use_tta(cfg)
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    adapt_launch(cfg, args.launcher)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl or .pickle file')
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out)
        )
    runner.test()


if __name__ == '__main__':
    main()
