"""The deploy tools end to end on a tiny shapes set: evaluate, quantize,
draw; and the evaluation's wiring checked against the ground truth."""

import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from helpers import QUICKSTART, load_file
from mmdet_efficientdet.datasets import make_shapes_dataset
from mmdet_efficientdet.deploy.onnx_eval import evaluate_onnx


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    make_shapes_dataset(str(root), 4, 3, 96, 0)
    return str(root)


def data_options(root: str) -> list:
    return [
        f'train_dataloader.dataset.data_root={root}/',
        f'test_dataloader.dataset.data_root={root}/',
        f'test_evaluator.ann_file={root}/annotations/val.json',
    ]


def shapes_config(root: str) -> Config:
    cfg = Config.fromfile(QUICKSTART)
    cfg.merge_from_dict(
        dict(option.split('=', 1) for option in data_options(root))
    )
    return cfg


def test_evaluation_scores_what_the_detector_returns(shapes):
    """Ground-truth boxes score mAP 1, moved ones less: image ids, labels
    and box format reach the metric as they should."""
    cfg = shapes_config(shapes)
    with open(cfg.test_evaluator.ann_file) as f:
        coco = json.load(f)
    ids = {image['file_name']: image['id'] for image in coco['images']}
    labels = {c['id']: i for i, c in enumerate(coco['categories'])}

    def oracle(shift: float):
        def detect(path: str):
            anns = [
                a
                for a in coco['annotations']
                if a['image_id'] == ids[osp.basename(path)]
            ]
            boxes = np.array(
                [
                    [x + shift, y, x + w + shift, y + h]
                    for x, y, w, h in (a['bbox'] for a in anns)
                ],
                np.float32,
            ).reshape(-1, 4)
            scores = np.ones(len(anns), np.float32)
            cats = np.array([labels[a['category_id']] for a in anns])
            return boxes, scores, cats.astype(np.int64)

        return detect

    assert evaluate_onnx(cfg, oracle(0.0))['coco/bbox_mAP'] == 1.0
    moved = evaluate_onnx(cfg, oracle(6.0))['coco/bbox_mAP']
    assert 0 < moved < 0.9


@pytest.mark.slow
def test_tools_export_evaluate_quantize_draw(shapes, tmp_path, capsys):
    model = str(tmp_path / 'qs.onnx')
    export = load_file('tools/deploy/export_onnx.py')
    code = export.main(
        [QUICKSTART, '--out', model, '--size', '128', '--deploy', '--nms']
    )
    assert code == 0
    options = ['--cfg-options', *data_options(shapes)]
    metrics = str(tmp_path / 'metrics.json')
    tool = load_file('tools/deploy/test_onnx.py')
    assert tool.main([QUICKSTART, model, '--json', metrics, *options]) == 0
    with open(metrics) as f:
        result = json.load(f)
    assert 0 <= result['coco/bbox_mAP'] <= 1 and result['ms_per_image'] > 0

    int8 = str(tmp_path / 'qs_int8.onnx')
    quantize = load_file('tools/deploy/quantize_onnx.py')
    args = [QUICKSTART, model, '--out', int8, '--calib', '2', '--eval']
    args += ['--reps', '2', '--threads', '1', *options]
    assert quantize.main(args) == 0
    printed = capsys.readouterr().out
    assert '| size (MB) |' in printed and '| coco/bbox_mAP |' in printed
    assert osp.getsize(int8) < 0.5 * osp.getsize(model)

    image = osp.join(shapes, 'val', '00001.png')
    drawn = str(tmp_path / 'drawn.jpg')
    demo = load_file('tools/deploy/ort_demo.py')
    assert demo.main([image, int8, '--out', drawn, '--score-thr', '0']) == 0
    assert osp.isfile(drawn)
    assert 'detections drawn to' in capsys.readouterr().out


def test_compare_pairs_tied_detections_in_either_order():
    pair = load_file('tools/deploy/compare_onnx.py').pair_detections
    boxes = np.array([[0, 0, 0.5, 0.5], [0.2, 0.2, 0.4, 0.4], [0, 0, 1, 1]])
    ref = boxes, np.array([0.9, 0.3, 0.3]), np.array([0, 1, 2])
    swapped = boxes[[0, 2, 1]], np.array([0.9, 0.3, 0.3]), np.array([0, 2, 1])
    assert pair(ref, ref, 1e-4, 1e-3) == (0.0, 0.0, True)
    assert pair(ref, swapped, 1e-4, 1e-3) == (0.0, 0.0, False)
    relabelled = boxes, ref[1], np.array([0, 2, 1])
    assert pair(ref, relabelled, 1e-4, 1e-3) is None
    moved = boxes + np.array([0.01, 0, 0.01, 0]), ref[1], ref[2]
    assert pair(ref, moved, 1e-4, 1e-3) is None
    assert pair(ref, (boxes, ref[1] + 2e-4, ref[2]), 1e-4, 1e-3) is None
    assert pair(ref, (boxes[:2], ref[1][:2], ref[2][:2]), 1e-4, 1e-3) is None


def test_levels_excludes_decoding():
    from mmdet.apis import init_detector

    from helpers import coco_config
    from mmdet_efficientdet.deploy.onnx_export import DetectorExport

    model = init_detector(coco_config('lite0'), None, device='cpu')
    with pytest.raises(ValueError, match='levels=True'):
        DetectorExport(model, (1, 3, 128, 128), decode=True, levels=True)
    # the kind the metadata records follows the options
    nms = dict(nms_pre=10, score_thr=0.1, iou_threshold=0.5, max_per_img=5)
    for options, kind in [
        ({}, 'raw'),
        (dict(levels=True), 'levels'),
        (dict(decode=True), 'decoded'),
        (dict(nms=nms), 'detections'),
    ]:
        assert DetectorExport(model, (1, 3, 128, 128), **options).kind == kind
    tool = load_file('tools/deploy/export_onnx.py')
    config = coco_config('lite0')
    with pytest.raises(SystemExit):
        tool.parse_args([config, '--out', 'x.onnx', '--levels', '--nms'])
