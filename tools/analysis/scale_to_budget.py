"""The largest EfficientDet (compound coefficient phi) within a budget.

    python tools/analysis/scale_to_budget.py --macs 2.5G [--params 4M]
        [--latency 40ms] [--train-memory 3GiB] [--batch 1] [--device cpu]
        [--num-classes N] [--base-config CONFIG] [--out-config OUT.py]
        [--max-phi 8] [--step 0.01] [--reps 5] [--threads N]

Every budget given must hold. phi is searched from 0 to ``--max-phi`` on a
grid of ``--step``; the integers 0-7 are the official D0-D7, other values
the paper's formulas (``mmdet_efficientdet.scaling.get_spec``), so cost is
not monotonic in phi and the search checks both families
(``mmdet_efficientdet.analysis.budget``). Each model is costed at its own
input size (``get_spec(phi).image_size``): MACs and parameters counted
(batch 1), latency (network forward, batch ``--batch``) and peak training
memory (two SGD iterations at batch ``--batch``) measured on this machine.
Costs use 90 classes unless ``--num-classes`` says otherwise (90: the TF
checkpoints' COCO layout, as in the official size table).

Prints one line per model evaluated, then the predicted cost of the chosen
phi next to each budget, and writes a config that inherits
``--base-config`` and calls ``scaled_config(_base_, phi)``.
"""

import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional

import torch
from mmengine.config import Config

from mmdet_efficientdet.analysis.budget import (
    KINDS,
    SearchResult,
    format_cost,
    largest_phi,
    parse_budget,
)
from mmdet_efficientdet.analysis.config_file import write_scaled_config
from mmdet_efficientdet.analysis.costs import ModelCosts
from mmdet_efficientdet.analysis.study_rules import describe

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
D0_CONFIG = osp.join(
    REPO, 'configs', 'efficientdet', 'efficientdet_d0_8xb16-300e_coco.py'
)
COCO_TF_CLASSES = 90


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for kind in KINDS:
        parser.add_argument(
            '--' + kind.replace('_', '-'),
            metavar='BUDGET',
            help=f'{KINDS[kind].label} budget, e.g. {KINDS[kind].example}',
        )
    parser.add_argument(
        '--batch',
        type=int,
        default=1,
        help='images per call for latency and training memory',
    )
    parser.add_argument('--device', default='cpu', help='cpu, cuda:0, ...')
    parser.add_argument(
        '--num-classes',
        type=int,
        help=f'head classes to cost, also written into the config '
        f"(default: cost with {COCO_TF_CLASSES}, keep the base config's)",
    )
    parser.add_argument('--base-config', default=D0_CONFIG)
    parser.add_argument(
        '--out-config',
        help='config to write (default: '
        'work_dirs/scale_to_budget/efficientdet_<variant>.py)',
    )
    parser.add_argument('--max-phi', type=float, default=8.0)
    parser.add_argument('--step', type=float, default=0.01)
    parser.add_argument(
        '--reps', type=int, default=5, help='timed forwards per latency'
    )
    parser.add_argument(
        '--threads',
        type=int,
        help="torch threads while measuring (default: torch's)",
    )
    args = parser.parse_args(argv)
    args.budgets = {}
    for kind in KINDS:
        text = getattr(args, kind)
        if text is not None:
            try:
                args.budgets[kind] = parse_budget(kind, text)
            except ValueError as error:
                parser.error(str(error))
    if not args.budgets:
        parser.error(
            'give at least one budget: '
            + ', '.join('--' + k.replace('_', '-') for k in KINDS)
        )
    return args


def report(result: SearchResult) -> str:
    """The predicted cost of the chosen phi next to each budget."""
    best = result.best
    title = f'phi {best.phi:g} ({best.spec.name})'
    lines = [
        f'| cost | budget | {title} |',
        '|---|---|---|',
    ]
    for kind, budget in result.budgets.items():
        lines.append(
            f'| {KINDS[kind].label} | {format_cost(kind, budget)} | '
            f'{format_cost(kind, best.costs[kind])} |'
        )
    name = best.spec.name.upper() if best.source == 'official table' else ''
    lines += [
        '',
        f'largest phi within the budget: {best.phi:g}'
        + (f' = EfficientDet-{name}' if name else '')
        + f' ({best.source}): {describe(best.spec)}',
    ]
    after = result.next_larger
    if after is not None:
        over = ', '.join(
            f'{KINDS[k].label} {format_cost(k, after.costs[k])}'
            for k, budget in result.budgets.items()
            if after.costs[k] > budget
        )
        lines.append(
            f'next larger phi evaluated: {after.phi:g} ({after.source}, '
            f'{describe(after.spec)}) needs {over}'
        )
    if result.capped:
        lines.append(
            'the budget allows more than --max-phi; raise it to search on'
        )
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> SearchResult:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    base = Config.fromfile(args.base_config)
    classes = args.num_classes or COCO_TF_CLASSES
    costs = ModelCosts(
        base.to_dict(),
        list(args.budgets),
        num_classes=classes,
        batch=args.batch,
        device=args.device,
        reps=args.reps,
    )
    measured = [k for k in args.budgets if k in ('latency', 'train_memory')]
    print(
        f"costs at each model's own input size, {classes} classes"
        + (
            f'; {", ".join(measured)} measured on {args.device} at batch '
            f'{args.batch}, {torch.get_num_threads()} torch threads'
            if measured
            else ''
        ),
        flush=True,
    )

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        result = largest_phi(
            costs, args.budgets, args.max_phi, args.step, log=log
        )
    except ValueError as error:
        sys.exit(f'error: {error}')
    print()
    print(report(result))
    out = args.out_config or osp.join(
        'work_dirs',
        'scale_to_budget',
        f'efficientdet_{result.best.spec.name}.py',
    )
    budgets: Dict[str, float] = result.budgets
    shown = ', '.join(
        f'{KINDS[k].label} <= {format_cost(k, v)}' for k, v in budgets.items()
    )
    write_scaled_config(
        out,
        args.base_config,
        result.best.phi,
        comment=[
            'Written by tools/analysis/scale_to_budget.py: the largest',
            f'compound coefficient with {shown}',
            f'({classes} classes, input {result.best.spec.image_size}).',
        ],
        num_classes=args.num_classes,
    )
    print(f'config written to {out}')
    return result


if __name__ == '__main__':
    main()
