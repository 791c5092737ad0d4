"""Evaluate a checkpoint with MMEngine: mmdet's ``tools/test.py`` CLI.

python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RES.pkl]
    [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]
"""

import argparse
import os.path as osp

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdet_efficientdet.engine import (
    adapt_launch,
    add_common_args,
    checkpoint_safe_globals,
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
    return parse_common(parser)


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
    with checkpoint_safe_globals():
        runner.test()


if __name__ == '__main__':
    main()
