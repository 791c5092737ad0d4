"""The compound-scaling study at small scale, in one command.

    python tools/analysis/scaling_study.py [--setting short|default]
        [--work-dir work_dirs/scaling_study] [--data-root data/shapes]
        [--base frozen-lite0|scratch] [--epochs N] [--seed 0] [--threads 1]

Trains a small EfficientDet on the embedded shapes dataset scaled by
width only, depth only, resolution only and by the compound rule (alpha,
beta, gamma grid-searched at phi = 1 under alpha * beta^2 * gamma^2 ~= 2),
evaluates val bbox mAP and counts MACs, and writes
``<work-dir>/scaling_study.md`` (the tables), ``scaling_study.png`` (mAP
against MACs per rule) and ``scaling_study.json`` (raw results). One line
per run with its time and an ETA. The dataset is drawn into ``--data-root``
when missing (default: the quickstart's ``data/shapes``; the short setting
draws a small one into the work dir).

``--base frozen-lite0`` (default) keeps the quickstart's ImageNet
EfficientNet-Lite0 backbone, frozen, and scales BiFPN, head and input;
``--base scratch`` trains a half-width, half-depth Lite backbone from
scratch and scales it too; it needs far longer schedules (its base model
reached val bbox mAP 0.004 after 12 epochs, see docs/scaling_explorer.md).
"""

import argparse
import os.path as osp
import time

import torch

from mmdet_efficientdet.analysis.scaling_study import SETTINGS, run_study
from mmdet_efficientdet.analysis.study_report import markdown, plot, to_json
from mmdet_efficientdet.analysis.study_rules import BASES
from mmdet_efficientdet.analysis.study_runner import (
    add_study_arguments,
    study_inputs,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_study_arguments(parser, SETTINGS, 'work_dirs/scaling_study')
    parser.add_argument(
        '--base',
        choices=sorted(BASES),
        default='frozen-lite0',
        help='frozen-lite0: ImageNet Lite0 trunk, frozen, the rules scale '
        'BiFPN, head and input; scratch: everything from scratch and '
        'scaled (needs far longer schedules than the settings here)',
    )
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    setting = SETTINGS[args.setting]
    if args.epochs is not None:
        setting = setting._replace(epochs=args.epochs)
    data_root, base_cfg = study_inputs(args)
    start = time.perf_counter()
    print(
        f'scaling study, setting {args.setting}, base {args.base}: '
        f'{setting}; data '
        f'{data_root}; {torch.get_num_threads()} torch threads',
        flush=True,
    )

    def log(line: str) -> None:
        print(line, flush=True)

    results, best = run_study(
        setting, base_cfg, args.work_dir, data_root, args.seed, log, args.base
    )
    seconds = time.perf_counter() - start
    md = osp.join(args.work_dir, 'scaling_study.md')
    png = osp.join(args.work_dir, 'scaling_study.png')
    with open(md, 'w', encoding='utf-8') as f:
        f.write(
            markdown(results, best, args.setting, setting, seconds, args.base)
        )
    with open(osp.join(args.work_dir, 'scaling_study.json'), 'w') as f:
        f.write(to_json(results, best))
    plot(results, png)
    print(f'{len(results)} runs in {seconds / 60:.1f} min')
    print(f'table: {md}\nplot: {png}')


if __name__ == '__main__':
    main()
