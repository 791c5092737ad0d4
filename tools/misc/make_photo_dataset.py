"""Draw the photo-objects fine-tuning dataset (deterministic; ~20 s).

One class, 'face' (70 real faces for train, 30 others for val), pasted
into crops of scikit-image's sample photographs; 1024x768 JPEGs, see
mmdet_efficientdet/datasets/photo_objects.py.

python tools/misc/make_photo_dataset.py [--out data/photo_objects]
"""

import argparse
import os.path as osp

from mmdet_efficientdet.datasets import make_photo_objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--out', default='data/photo_objects', help='output folder'
    )
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    make_photo_objects(args.out, args.num_train, args.num_val, args.seed)
    for split in ('train', 'val'):
        print(
            f'{split}: {osp.join(args.out, "annotations", split + ".json")} '
            f'(images in {osp.join(args.out, split)})'
        )


if __name__ == '__main__':
    main()
