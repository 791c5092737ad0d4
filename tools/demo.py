"""Detect objects in an image and draw them.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out OUT.jpg \
        [--device cpu|cuda:0] [--score-thr 0.3]

Runs mmdet's ``DetInferencer`` on the config and checkpoint (training
checkpoints included: they load under torch's weights-only rule through
the same allow-list as ``tools/train.py --resume``).
"""

import argparse
import os.path as osp

import mmcv
from mmdet.apis import DetInferencer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Draw detections')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='output image file')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='drawing threshold'
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for path, what in [
        (args.image, 'image'),
        (args.config, 'config'),
        (args.checkpoint, 'checkpoint'),
    ]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} file {path!r} not found')
    inferencer = DetInferencer(
        model=args.config,
        weights=args.checkpoint,
        device=args.device,
        show_progress=False,
    )
    result = inferencer(
        args.image,
        return_vis=True,
        no_save_vis=True,
        pred_score_thr=args.score_thr,
    )
    mmcv.imwrite(result['visualization'][0][..., ::-1], args.out)
    pred = result['predictions'][0]
    kept = [s for s in pred['scores'] if s >= args.score_thr]
    classes = inferencer.model.dataset_meta.get('classes', ())
    print(
        f'{len(kept)} detections with score >= {args.score_thr} '
        f'(classes: {", ".join(classes)}) drawn to {args.out}'
    )


if __name__ == '__main__':
    main()
