"""The onnxruntime runner and NMS in the graph give mmdet's predictions."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from mmdet.apis import inference_detector, init_detector

from helpers import (
    ORT_RUNNER,
    coco_config,
    export_for_runner,
    load_runner,
    smooth_image,
    with_effdet_weights,
)
from mmdet_efficientdet.deploy.onnx_export import (
    DetectorExport,
    export_onnx,
)


def assert_same_detections(got, ref, image_size: int) -> None:
    boxes, scores, labels = got
    assert len(ref) > 0 and len(boxes) == len(ref)
    np.testing.assert_array_equal(labels, ref.labels.numpy())
    np.testing.assert_allclose(scores, ref.scores.numpy(), atol=1e-4, rtol=0)
    diff = np.abs(boxes - ref.bboxes.numpy()).max() / image_size
    assert diff <= 1e-3, diff


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['lite0', 'd0'])
def test_runner_equals_mmdet_predict(tmp_path, variant):
    torch.manual_seed(0)
    model = init_detector(coco_config(variant), None, device='cpu')
    size = model.cfg.efficientdet['image_size']
    with_effdet_weights(model, variant, size)
    model.eval()
    image = smooth_image(300, 420)  # not square, not the input size
    ref = inference_detector(model, image).pred_instances
    # at unit output spread the scores are spread too: NMS ties are rare
    assert float(ref.scores[0] - ref.scores[-1]) > 0.1
    runner = load_runner()
    for outputs in ('detections', 'decoded'):
        detector = runner.OrtDetector(
            export_for_runner(model, tmp_path, outputs), 1
        )
        assert_same_detections(detector(image), ref, max(image.shape))


@pytest.mark.slow
def test_nms_graph_batch_equals_mmdet_predict(tmp_path):
    torch.manual_seed(0)
    model = init_detector(coco_config('lite0'), None, device='cpu')
    size = model.cfg.efficientdet['image_size']
    with_effdet_weights(model, 'lite0', size)
    model.eval()
    images = [smooth_image(300, 420, seed=1), smooth_image(500, 260, seed=2)]
    runner = load_runner()
    path = export_for_runner(model, tmp_path, 'detections', batch=2)
    detector = runner.OrtDetector(path, 1)
    inputs = [detector.preprocess(image) for image in images]
    dets, scores, labels, num = detector.session.run(
        None,
        dict(
            images=np.concatenate([x[0] for x in inputs]),
            img_shape=np.array([x[1] for x in inputs], np.float32),
            scale_factor=np.array([x[2] for x in inputs], np.float32),
        ),
    )
    for i, image in enumerate(images):
        ref = inference_detector(model, image).pred_instances
        n = int(num[i])
        got = dets[i, :n], scores[i, :n], labels[i, :n]
        assert_same_detections(got, ref, max(image.shape))


def test_runner_imports_no_torch():
    code = (
        'import importlib.util, sys\n'
        f'spec = importlib.util.spec_from_file_location("r", {ORT_RUNNER!r})\n'
        'spec.loader.exec_module(importlib.util.module_from_spec(spec))\n'
        'assert "torch" not in sys.modules, "torch imported"\n'
        'assert "mmdet" not in sys.modules, "mmdet imported"\n'
    )
    subprocess.run([sys.executable, '-c', code], check=True)


def test_read_image_converts_channels():
    runner = load_runner()
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for image in (gray, gray[..., None]):
        out = runner.read_image(image)
        assert out.shape == (3, 4, 3)
        np.testing.assert_array_equal(out[..., 2], gray)
    rgba = np.stack([gray, gray + 1, gray + 2, gray + 3], -1)
    np.testing.assert_array_equal(runner.read_image(rgba), rgba[..., :3])
    with pytest.raises(ValueError, match='uint8'):
        runner.read_image(gray.astype(np.float32))
    with pytest.raises(ValueError, match='image'):
        runner.read_image(np.zeros((2, 3, 5), np.uint8))


@pytest.fixture(scope='module')
def small_export(tmp_path_factory):
    """Lite0 at 128 with NMS in the graph (random weights)."""
    torch.manual_seed(0)
    model = init_detector(coco_config('lite0'), None, device='cpu')
    model.cfg.efficientdet['image_size'] = 128
    return export_for_runner(
        model, tmp_path_factory.mktemp('small'), 'detections'
    )


@pytest.mark.slow
def test_runner_handles_gray_rgba_and_other_sizes(small_export, tmp_path):
    import cv2

    runner = load_runner()
    detector = runner.OrtDetector(small_export, 1)
    gray = smooth_image(90, 150)[..., 1]
    bgr = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.concatenate([bgr, np.full_like(gray[..., None], 7)], -1)
    files = {'gray.png': gray, 'rgba.png': rgba}
    expected = detector.preprocess(bgr)
    assert expected[1] == (77, 128)  # resized to fit, then padded
    for name, image in files.items():
        path = str(tmp_path / name)
        assert cv2.imwrite(path, image)
        for source in (path, image):
            got = detector.preprocess(source)
            np.testing.assert_array_equal(got[0], expected[0])
            assert got[1:] == expected[1:]
    boxes, scores, labels = detector(str(tmp_path / 'gray.png'))
    assert boxes.shape == (len(scores), 4) and len(labels) == len(scores)
    # boxes in the original image (150 x 90), not the 128 x 128 input
    assert float(boxes[:, 2].max()) > 128
    assert float(boxes[:, 3].max()) <= 90 + 1e-3
    with pytest.raises(ValueError, match=r'\(1, 3, 128, 128\)'):
        detector.run(np.zeros((1, 3, 90, 150), np.float32), *expected[1:])


def test_runner_rejects_other_files(tmp_path):
    runner = load_runner()
    text = tmp_path / 'model.onnx'
    text.write_text('not a model')
    with pytest.raises(ValueError, match='not an ONNX model'):
        runner.OrtDetector(str(text))
    with pytest.raises(FileNotFoundError):
        runner.OrtDetector(str(tmp_path / 'missing.onnx'))
    with pytest.raises(FileNotFoundError):
        runner.read_image(str(tmp_path / 'missing.png'))
    with pytest.raises(ValueError, match='not an image'):
        runner.read_image(str(text))
    with pytest.raises(ValueError, match='spinning must be one of'):
        runner.OrtDetector(str(text), spinning='sometimes')


@pytest.mark.slow
def test_runner_rejects_export_without_metadata(tmp_path):
    torch.manual_seed(0)
    model = init_detector(coco_config('lite0'), None, device='cpu')
    shape = (1, 3, 64, 64)
    wrapper = DetectorExport(model, shape, decode=True).eval()
    path = export_onnx(wrapper, str(tmp_path / 'plain.onnx'))
    with pytest.raises(ValueError, match='no deployment metadata'):
        load_runner().OrtDetector(path)


def stand_in(tmp_path, outputs='detections', **meta_overrides) -> str:
    """A one-node model with the quickstart's deployment metadata."""
    from mmengine.config import Config
    from onnx import TensorProto, helper

    from helpers import QUICKSTART
    from mmdet_efficientdet.deploy.onnx_meta import deploy_metadata

    shape = [1, 3, 32, 32]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node('Relu', ['images'], ['cls_logits'])],
        'stand-in',
        [value('images', TensorProto.FLOAT, shape)],
        [value('cls_logits', TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 17)]
    )
    nms = dict(nms_pre=10, score_thr=0.1, iou_threshold=0.5, max_per_img=5)
    meta = deploy_metadata(Config.fromfile(QUICKSTART), shape, outputs, nms)
    meta.update({k: json.dumps(v) for k, v in meta_overrides.items()})
    for key, text in meta.items():
        model.metadata_props.add(key=key, value=text)
    path = tmp_path / f'{outputs}.onnx'
    path.write_bytes(model.SerializeToString())
    return str(path)


@pytest.mark.parametrize('outputs', ['raw', 'levels'])
def test_runner_refuses_undecoded_exports(tmp_path, outputs):
    """An export of logits and deltas (raw or per level) is preprocessed
    for, and running it says which export the runner needs."""
    detector = load_runner().OrtDetector(stand_in(tmp_path, outputs))
    inputs = detector.preprocess(smooth_image(40, 50, seed=0))
    assert inputs[0].shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match=f"'{outputs}' outputs.*--nms"):
        detector.run(*inputs)


@pytest.mark.parametrize(
    'meta',
    [
        {},
        {'bgr_to_rgb': False},
        {'keep_ratio': False},
        {'pad_size': [30, 31], 'pad_val': 114.0, 'pad_value': -3.0},
    ],
)
def test_preprocess_is_resize_normalise_pad(tmp_path, meta):
    """The input is the config's steps written out plainly: resize,
    channel order, (x - mean) / std, the pipeline's pad, the
    preprocessor's pad."""
    import cv2

    detector = load_runner().OrtDetector(stand_in(tmp_path, **meta))
    m = detector.meta
    image = smooth_image(20, 50, seed=3)
    inputs, img_shape, scale_factor = detector.preprocess(image)
    h, w = (13, 32) if m['keep_ratio'] else (32, 32)
    assert img_shape == (h, w)
    assert scale_factor == (w / 50, h / 20)
    pixels = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if m['bgr_to_rgb']:
        pixels = pixels[..., ::-1]
    mean = np.asarray(m['mean'], np.float32)
    std = np.asarray(m['std'], np.float32)
    expected = np.full((32, 32, 3), m['pad_value'], np.float32)
    pad_h, pad_w = m.get('pad_size') or (h, w)
    expected[:pad_h, :pad_w] = (m['pad_val'] - mean) / std
    expected[:h, :w] = (pixels.astype(np.float32) - mean) / std
    assert inputs.dtype == np.float32 and inputs.flags.c_contiguous
    np.testing.assert_array_equal(inputs[0], expected.transpose(2, 0, 1))


def test_runner_warns_of_8bit_weights_without_vnni(tmp_path, monkeypatch):
    runner = load_runner()
    full = stand_in(tmp_path, weight_bits=8)
    monkeypatch.setattr(runner, 'int8_saturates', lambda: True)
    with pytest.warns(UserWarning, match='8-bit .* no VNNI'):
        runner.OrtDetector(full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        runner.OrtDetector(stand_in(tmp_path, 'decoded', weight_bits=7))
        monkeypatch.setattr(runner, 'int8_saturates', lambda: False)
        runner.OrtDetector(full)
    assert not [w for w in caught if 'VNNI' in str(w.message)]


def test_int8_saturates_reads_the_cpu_flags(tmp_path, monkeypatch):
    runner = load_runner()
    info = tmp_path / 'cpuinfo'
    monkeypatch.setattr(runner.platform, 'machine', lambda: 'x86_64')
    info.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n')
    assert runner.int8_saturates(str(info))
    for vnni in ('avx512_vnni', 'avx_vnni', 'amx_int8'):
        info.write_text(f'flags\t: avx2 {vnni} fma\n')
        assert not runner.int8_saturates(str(info))
    assert not runner.int8_saturates(str(tmp_path / 'missing'))
    monkeypatch.setattr(runner.platform, 'machine', lambda: 'aarch64')
    info.write_text('flags\t: avx2\n')
    assert not runner.int8_saturates(str(info))
