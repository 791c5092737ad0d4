"""FPN vs PAFPN vs BiFPN (three fusions, 1-3 layers) at matched cost.

    python tools/analysis/neck_study.py [--setting short|default]
        [--necks fpn pafpn bifpn-sum ...] [--width 32] [--match macs|params]
        [--seeds 0 1] [--epochs N] [--work-dir work_dirs/neck_study]
        [--data-root data/shapes] [--threads 1]

The scaling study's frozen-Lite0 model (ImageNet EfficientNet-Lite0
backbone, frozen; EfficientDet's head; 128 px, P3-P5) is trained on the
embedded shapes dataset with each neck: mmdet's FPN and PAFPN, BiFPN with
'sum' / 'fast' / 'softmax' fusion (3 layers) and BiFPN (fast) with 1, 2 and
3 layers. Each neck's width makes its MACs (``--match params``: its
parameters) closest to those of BiFPN-fast with 3 layers at ``--width``.
Every model trains with the same schedule, data and seeds, in this process,
through the scaling study's runner; then the forward of each is timed
(interleaved, median, batch 1). Writes ``<work-dir>/neck_study.md`` (the
table), ``neck_study.png`` (bbox mAP against the neck's MACs) and
``neck_study.json``.
"""

import argparse
import os.path as osp
import time
from typing import List, Optional

import torch

from mmdet_efficientdet.analysis import neck_study, study_report
from mmdet_efficientdet.analysis.study_runner import (
    add_study_arguments,
    study_inputs,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_study_arguments(
        parser, neck_study.NECK_SETTINGS, 'work_dirs/neck_study'
    )
    parser.add_argument(
        '--necks',
        nargs='+',
        default=list(neck_study.NECKS),
        metavar='NECK',
        help='necks to train, some of '
        f'{", ".join(neck_study.NECKS)} (default: all)',
    )
    parser.add_argument(
        '--width',
        type=int,
        default=32,
        help='width of the reference, BiFPN-fast with 3 layers',
    )
    parser.add_argument(
        '--match',
        choices=neck_study.MATCH,
        default='macs',
        help="the neck's cost the widths match",
    )
    parser.add_argument(
        '--seeds', type=int, nargs='+', help="override the setting's seeds"
    )
    args = parser.parse_args(argv)
    try:
        neck_study.check_necks(args.necks)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    setting = neck_study.NECK_SETTINGS[args.setting]
    if args.epochs is not None:
        setting = setting._replace(epochs=args.epochs)
    if args.seeds:
        setting = setting._replace(seeds=tuple(args.seeds))
    data_root, base_cfg = study_inputs(args)
    start = time.perf_counter()
    print(
        f'neck study, setting {args.setting}: {setting}; data {data_root}; '
        f'{torch.get_num_threads()} torch threads',
        flush=True,
    )

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        study = neck_study.run_neck_study(
            setting,
            base_cfg,
            args.work_dir,
            data_root,
            args.necks,
            args.width,
            args.match,
            log,
        )
    except ValueError as error:
        raise SystemExit(f'error: {error}') from None
    seconds = time.perf_counter() - start
    out = osp.join(args.work_dir, 'neck_study')
    with open(out + '.md', 'w', encoding='utf-8') as f:
        f.write(
            study_report.neck_markdown(study, args.setting, setting, seconds)
        )
    with open(out + '.json', 'w', encoding='utf-8') as f:
        f.write(study_report.neck_json(study))
    study_report.neck_plot(study, out + '.png')
    print(f'{len(study.runs)} runs in {seconds / 60:.1f} min')
    print(f'table: {out}.md\nplot: {out}.png')


if __name__ == '__main__':
    main()
