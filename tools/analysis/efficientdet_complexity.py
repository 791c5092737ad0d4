"""Parameters, MACs and input size of EfficientDet configs; scaling plot.

    python tools/analysis/efficientdet_complexity.py [CONFIG ...]
        [--num-classes 90] [--plot scaling.png]

Prints a markdown table with one row per config (default: every config in
``configs/efficientdet/``). MACs are counted with
``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2: convolutions
and matrix products; norms, activations, pooling and resampling are not
counted) over backbone, neck and head at the config's input size, batch 1,
on the ``meta`` device - nothing is computed, so D7x takes seconds.
``--num-classes 90`` gives the sizes of the TF checkpoints (90 COCO ids).

``--plot`` draws MACs against the compound coefficient for compound scaling
(the official D0-D7) next to scaling one dimension of D0 as far as the
table does at each phi: width only (backbone width multiplier and BiFPN /
head width), depth only (backbone depth multiplier, BiFPN layers, head
convs) and resolution only.
"""

import argparse
import glob
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config

from mmdet_efficientdet.analysis.complexity import count, input_size
from mmdet_efficientdet.analysis.study_report import (
    STYLES,
    Series,
    plot_series,
)
from mmdet_efficientdet.analysis.study_rules import with_dimensions
from mmdet_efficientdet.scaling import (
    OFFICIAL,
    EfficientDetSpec,
    get_spec,
    scaled_config,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'efficientdet')
D0_CONFIG = osp.join(CONFIG_DIR, 'efficientdet_d0_8xb16-300e_coco.py')


def config_rows(
    paths: List[str], num_classes: Optional[int] = None
) -> List[Dict]:
    rows = []
    for path in paths:
        cfg = Config.fromfile(path)
        size = input_size(cfg)
        params, macs = count(cfg.model, size, num_classes)
        spec = cfg.get('efficientdet', {})
        rows.append(
            dict(
                config=osp.splitext(osp.basename(path))[0],
                variant=spec.get('name', '-'),
                phi=spec.get('phi'),
                input=size,
                params=params,
                macs=macs,
            )
        )
    return rows


def markdown(rows: List[Dict]) -> str:
    lines = [
        '| config | variant | phi | input | params | MACs |',
        '|---|---|---|---|---|---|',
    ]
    for row in rows:
        phi = '-' if row['phi'] is None else f'{row["phi"]:g}'
        lines.append(
            f'| {row["config"]} | {row["variant"]} | {phi} | '
            f'{row["input"]} | {row["params"]:,} | '
            f'{row["macs"] / 1e9:.3f} G |'
        )
    return '\n'.join(lines)


def one_dimension(phi: int, dimension: str) -> EfficientDetSpec:
    """D0 with one dimension scaled as far as the table scales it at phi."""
    d0, target = get_spec(0), get_spec(phi)
    if dimension == 'compound':
        return target
    return with_dimensions(d0, target, [dimension], f'd0-{dimension}{phi}')


DIMENSIONS = ('compound', 'width', 'depth', 'resolution')


def scaling_curves(
    max_phi: int = 7, num_classes: Optional[int] = None
) -> Dict[str, List[int]]:
    """MACs at phi = 0 .. max_phi for each way of scaling D0."""
    base = Config.fromfile(D0_CONFIG)
    curves = {}
    for dimension in DIMENSIONS:
        curves[dimension] = []
        for phi in range(max_phi + 1):
            spec = one_dimension(phi, dimension)
            model = scaled_config(base, spec)['model']
            curves[dimension].append(
                count(model, spec.image_size, num_classes)[1]
            )
    return curves


def plot(curves: Dict[str, List[int]], path: str) -> None:
    plot_series(
        path,
        [
            Series(
                range(len(macs)),
                [m / 1e9 for m in macs],
                STYLES[dimension],
                'compound (D0-D7)'
                if dimension == 'compound'
                else f'{dimension} only',
            )
            for dimension, macs in curves.items()
        ],
        'compound coefficient phi',
        'GMACs (log scale)',
        'Scaling EfficientDet-D0: MACs per dimension',
        log_y=True,
    )


def default_configs() -> List[str]:
    order = {name: i for i, name in enumerate(OFFICIAL)}

    def key(path: str) -> Tuple[int, str]:
        variant = osp.basename(path).split('_')[1]
        return order.get(variant, len(order)), path

    return sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')), key=key)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='config files')
    parser.add_argument(
        '--num-classes',
        type=int,
        help='override the head classes (90: the TF checkpoints)',
    )
    parser.add_argument('--plot', help='write the scaling plot to this PNG')
    parser.add_argument(
        '--max-phi', type=int, default=7, help='last phi of the plot'
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rows = config_rows(args.configs or default_configs(), args.num_classes)
    print(markdown(rows))
    if args.plot:
        curves = scaling_curves(args.max_phi, args.num_classes)
        plot(curves, args.plot)
        print()
        print('| phi | ' + ' | '.join(DIMENSIONS) + ' |')
        print('|---' * (len(DIMENSIONS) + 1) + '|')
        for phi in range(args.max_phi + 1):
            cells = [f'{curves[d][phi] / 1e9:.2f} G' for d in DIMENSIONS]
            print(f'| {phi} | ' + ' | '.join(cells) + ' |')
        print(f'\nscaling plot written to {args.plot}')


if __name__ == '__main__':
    main()
