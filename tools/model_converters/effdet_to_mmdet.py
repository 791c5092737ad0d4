"""Convert an effdet (efficientdet-pytorch) checkpoint to this package.

    python tools/model_converters/effdet_to_mmdet.py SRC.pth DST.pth \
        [--variant tf_efficientdet_d0] [--config CONFIG]

``--variant`` defaults to the one named by SRC's file name (effdet's
release names, e.g. ``tf_efficientdet_d0_34-f153e0cf.pth``). The result
loads into ``configs/efficientdet/converted/{variant}_coco.py`` (90 COCO
category-id outputs, evaluated with ``CocoCategoryIdMetric``). On any
mismatch the missing, unexpected and mis-shaped keys are printed and DST
is not written.
"""

import argparse
import sys

from mmdet_efficientdet.convert import (
    EFFDET_VARIANTS,
    convert_effdet_checkpoint,
    guess_variant,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an effdet checkpoint to mmdet-efficientdet'
    )
    parser.add_argument('src', help='effdet checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument(
        '--variant',
        choices=sorted(EFFDET_VARIANTS),
        metavar='NAME',
        help='effdet model name, e.g. tf_efficientdet_d0 (default: from '
        'the file name)',
    )
    parser.add_argument(
        '--config', help='target config (default: the converted config)'
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    variant = args.variant or guess_variant(args.src)
    if variant is None:
        print(
            f'error: cannot tell the variant from {args.src!r}; pass '
            f'--variant, one of {sorted(EFFDET_VARIANTS)}',
            file=sys.stderr,
        )
        return 2
    try:
        meta = convert_effdet_checkpoint(
            args.src, args.dst, variant, args.config
        )
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        print(f'nothing written to {args.dst}', file=sys.stderr)
        return 1
    print(f'wrote {args.dst} ({variant}); test it with {meta["config"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
