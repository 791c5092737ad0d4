"""Draw the embedded shapes dataset (deterministic; a few seconds).

python tools/misc/make_shapes_dataset.py [--out data/shapes]
"""

import argparse
import os.path as osp

from mmdet_efficientdet.datasets import make_shapes_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/shapes', help='output folder')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--image-size', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    files = make_shapes_dataset(
        args.out, args.num_train, args.num_val, args.image_size, args.seed
    )
    for split, path in files.items():
        print(f'{split}: {path} (images in {osp.join(args.out, split)})')


if __name__ == '__main__':
    main()
