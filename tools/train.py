"""Train a detector with MMEngine: mmdet's ``tools/train.py`` CLI.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]

Differences from mmdet's stock script, each for a known trap:
``--resume`` works under torch >= 2.6 weights-only loading (importing the
package allows the data-only classes an mmengine checkpoint holds); a
truncated checkpoint is named (and ``--resume`` without a path falls back
to the newest intact one);
``--amp`` also works on the CPU (bfloat16 autocast); distributed runs
without CUDA use the gloo backend and plain BN.
"""

import argparse

from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdet_efficientdet.engine import (
    adapt_launch,
    add_common_args,
    amp_optim_wrapper_type,
    load_config,
    parse_common,
)
from mmdet_efficientdet.engine.checkpoint_check import (
    check_checkpoint,
    latest_intact_checkpoint,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    add_common_args(parser)
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: fp16 on CUDA, bfloat16 on the CPU',
    )
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the total batch size',
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or without a path from the '
        'latest checkpoint in the work dir',
    )
    return parse_common(parser)


def build_config(args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmdet's script does."""
    cfg = load_config(args)
    if args.amp:
        cfg.optim_wrapper.update(amp_optim_wrapper_type())
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in (
            cfg.auto_scale_lr or {}
        ):
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr = '
                'dict(base_batch_size=N) in the config'
            )
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        # mmengine's latest checkpoint, or the newest intact one if that is
        # truncated
        cfg.load_from = latest_intact_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if cfg.get('load_from'):
        check_checkpoint(cfg.load_from)
    return cfg


def log_batch_size(runner: Runner) -> None:
    """Log the batch per process and in total, next to the config's lr."""
    world_size = runner.world_size
    per_process = runner.cfg.train_dataloader.batch_size
    lr = runner.cfg.optim_wrapper.optimizer.get('lr')
    scale = runner.cfg.get('auto_scale_lr') or {}
    runner.logger.info(
        f'batch size: {per_process} per process x {world_size} processes = '
        f'{per_process * world_size}; config lr {lr} for a batch of '
        f'{scale.get("base_batch_size", "?")}, auto-scaled: '
        f'{bool(scale.get("enable"))}'
    )


def main() -> None:
    args = parse_args()
    # avoid recompiling too often with torch.compile (mmdet's default)
    setup_cache_size_limit_of_dynamo()
    cfg = build_config(args)
    switched = adapt_launch(cfg, args.launcher)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    if switched:
        runner.logger.info(
            'no CUDA: distributed over gloo, SyncBN -> BN in '
            + ', '.join(switched)
        )
    log_batch_size(runner)
    runner.train()


if __name__ == '__main__':
    main()
