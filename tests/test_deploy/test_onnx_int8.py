"""int8 (QDQ) quantization: every conv but the box prediction's quantized,
outputs follow fp32."""

import os.path as osp

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mmdet.apis import init_detector
from onnx import TensorProto, helper, numpy_helper

from helpers import (
    coco_config,
    export_for_runner,
    load_runner,
    smooth_image,
    with_effdet_weights,
)
from mmdet_efficientdet.deploy.onnx_layout import ConvReLU6
from mmdet_efficientdet.deploy.onnx_quantize import (
    BOX_PREDICTION,
    FLATTEN_SCOPE,
    clip_relu6,
    quantize_int8,
    share_concat_scales,
    untie_initializers,
)


def shared_conv_graph() -> onnx.ModelProto:
    """Two convs on one weight (once through Identity) and one bias."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(
        rng.standard_normal((4, 4, 1, 1)).astype(np.float32), 'w'
    )
    bias = numpy_helper.from_array(np.zeros(4, np.float32), 'b')
    nodes = [
        helper.make_node('Identity', ['w'], ['w_copy'], name='id'),
        helper.make_node('Conv', ['x', 'w', 'b'], ['y1'], name='c1'),
        helper.make_node('Conv', ['y1', 'w_copy', 'b'], ['y2'], name='c2'),
        helper.make_node('Conv', ['y2', 'w', 'b'], ['y'], name='c3'),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        'shared',
        [value('x', TensorProto.FLOAT, [1, 4, 3, 3])],
        [value('y', TensorProto.FLOAT, [1, 4, 3, 3])],
        [weight, bias],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 17)]
    )


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        model.SerializeToString(), providers=['CPUExecutionProvider']
    )
    return session.run(None, {'x': x})[0]


def test_untie_initializers_copies_shared_weights():
    model = shared_conv_graph()
    x = np.random.default_rng(1).standard_normal((1, 4, 3, 3), np.float32)
    expected = run(model, x)
    # Identity -> own weight; c2, c3 get own biases; c3 its own weight
    assert untie_initializers(model) == 4
    assert all(node.op_type == 'Conv' for node in model.graph.node)
    names = [i for node in model.graph.node for i in node.input[1:]]
    inits = {init.name for init in model.graph.initializer}
    assert len(set(names)) == len(names) == 6 and set(names) <= inits
    np.testing.assert_array_equal(run(model, x), expected)


def test_clip_relu6_puts_the_clip_back(tmp_path):
    class TwoReLU6(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = ConvReLU6(4), ConvReLU6(4)
            self.conv = torch.nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.b(self.conv(self.a(x)))

    path = str(tmp_path / 'relu6.onnx')
    torch.onnx.export(
        TwoReLU6(),
        (torch.zeros(1, 4, 3, 3),),
        path,
        input_names=['x'],
        opset_version=17,
        dynamo=False,
    )
    model = onnx.load(path)
    x = 10 * np.random.default_rng(1).standard_normal((1, 4, 3, 3))
    x = x.astype(np.float32)
    expected = run(model, x)
    untie_initializers(model)
    assert clip_relu6(model) == 2
    assert [n.op_type for n in model.graph.node] == ['Clip', 'Conv', 'Clip']
    onnx.checker.check_model(model)
    np.testing.assert_allclose(run(model, x), expected, atol=1e-5)


def concat_qdq_graph(scales) -> onnx.ModelProto:
    """Two uint8 maps, each through a quantized transpose, concatenated
    as the export's output flattening is: ``scales`` of the maps and the
    concat."""
    inits = []
    for i, scale in enumerate(scales):
        inits.append(numpy_helper.from_array(np.float32(scale), f's{i}'))
        inits.append(numpy_helper.from_array(np.uint8(128), f'z{i}'))
    node = helper.make_node
    nodes = []
    for i in range(2):
        q, z = f's{i}', f'z{i}'
        nodes += [
            node('QuantizeLinear', [f'x{i}', q, z], [f'q{i}']),
            node('DequantizeLinear', [f'q{i}', q, z], [f'd{i}']),
            node('Transpose', [f'd{i}'], [f't{i}'], perm=[1, 0]),
            node('QuantizeLinear', [f't{i}', q, z], [f'tq{i}']),
            node('DequantizeLinear', [f'tq{i}', q, z], [f'td{i}']),
        ]
    nodes += [
        node('Concat', ['td0', 'td1'], ['c'], axis=0, name='/flatten/Concat'),
        node('QuantizeLinear', ['c', 's2', 'z2'], ['cq']),
        node('DequantizeLinear', ['cq', 's2', 'z2'], ['y']),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        'concat',
        [value(f'x{i}', TensorProto.FLOAT, [3, 2]) for i in range(2)],
        [value('y', TensorProto.FLOAT, [4, 3])],
        inits,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 17)]
    )


def test_share_concat_scales_rounds_each_level_once():
    model = concat_qdq_graph([0.01, 0.02, 0.03])
    assert share_concat_scales(model) == 2
    scales = {
        init.name: float(numpy_helper.to_array(init))
        for init in model.graph.initializer
        if init.name.startswith('s')
    }
    assert scales == pytest.approx({'s0': 0.03, 's1': 0.03, 's2': 0.03})
    x = {
        'x0': np.linspace(-3, 3, 6, dtype=np.float32).reshape(3, 2),
        'x1': np.linspace(-1, 2, 6, dtype=np.float32).reshape(3, 2),
    }
    session = ort.InferenceSession(
        model.SerializeToString(), providers=['CPUExecutionProvider']
    )
    expected = np.concatenate([x['x0'].T, x['x1'].T])
    # one rounding to the concat's grid: within half a step
    np.testing.assert_allclose(
        session.run(None, x)[0], expected, atol=0.015 + 1e-6
    )
    assert share_concat_scales(model) == 0  # already shared


@pytest.mark.slow
def test_int8_quantizes_every_conv_and_follows_fp32(tmp_path):
    torch.manual_seed(0)
    model = init_detector(coco_config('lite0'), None, device='cpu')
    size = model.cfg.efficientdet['image_size']
    with_effdet_weights(model, 'lite0', size)
    fp32 = export_for_runner(model, tmp_path, 'decoded')
    images = [smooth_image(200, 260, seed=i) for i in range(8)]
    int8 = quantize_int8(fp32, str(tmp_path / 'int8.onnx'), images)

    graph = onnx.load(int8).graph
    producer = {out: node for node in graph.node for out in node.output}
    convs = [node for node in graph.node if node.op_type == 'Conv']
    quantized = [
        conv
        for conv in convs
        if producer.get(conv.input[1]) is not None
        and producer[conv.input[1]].op_type == 'DequantizeLinear'
    ]
    # the head's shared convs included (the quantizer skips or stops on
    # weights that are not initializers of their own); the box
    # prediction's stay float: depthwise and pointwise half, 5 levels
    box = [c.name for c in convs if c.name.startswith(BOX_PREDICTION)]
    assert len(box) == 10 and not set(box) & {c.name for c in quantized}
    assert len(convs) > 150 and len(quantized) == len(convs) - len(box)
    # the flattening of the class scores stays uint8: its concat reads
    # dequantized maps and is quantized itself (onnxruntime fuses it into
    # one QLinearConcat); the boxes' is float from the prediction on
    users = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    concats = [  # of the levels (axis 1), not of reshape shapes (axis 0)
        node
        for node in graph.node
        if node.op_type == 'Concat'
        and node.name.startswith(FLATTEN_SCOPE)
        and onnx.helper.get_node_attr_value(node, 'axis') == 1
    ]
    assert len(concats) == 2
    scores, boxes = sorted(
        concats, key=lambda c: producer[c.input[0]].op_type == 'Reshape'
    )
    assert all(producer[n].op_type == 'Reshape' for n in boxes.input)
    assert [u.op_type for u in users[boxes.output[0]]] != ['QuantizeLinear']
    assert all(
        producer[name].op_type == 'DequantizeLinear' for name in scores.input
    )
    (quantize,) = users[scores.output[0]]
    assert quantize.op_type == 'QuantizeLinear'
    # at the concat's own scale, which makes it a copy
    scales = {producer[name].input[1] for name in scores.input}
    values = {
        float(numpy_helper.to_array(init))
        for init in graph.initializer
        if init.name in scales | {quantize.input[1]}
    }
    assert len(values) == 1
    assert osp.getsize(int8) < 0.45 * osp.getsize(fp32)
    # 7-bit weights: no saturation on x86 CPUs without VNNI
    initializers = {init.name: init for init in graph.initializer}
    weights = [
        numpy_helper.to_array(initializers[producer[c.input[1]].input[0]])
        for c in quantized
    ]
    assert {w.dtype for w in weights} == {np.dtype(np.int8)}
    assert min(w.min() for w in weights) >= -64
    assert max(w.max() for w in weights) <= 64  # 2 x 255 x 64 < 2**15

    runner = load_runner()
    ours, theirs = runner.OrtDetector(fp32, 1), runner.OrtDetector(int8, 1)
    # the runner reads the int8 file alike
    assert theirs.meta.pop('weight_bits') == 7
    assert theirs.meta == ours.meta
    image = smooth_image(240, 300, seed=99)  # not a calibration one
    inputs = ours.preprocess(image)[0]
    ref_scores, ref_boxes = ours.session.run(None, {'images': inputs})
    scores, boxes = theirs.session.run(None, {'images': inputs})

    def logit(p):
        p = p.astype(np.float64).clip(1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)).ravel()

    # measured: r = 0.976 (logits, std ~1), 0.997 (boxes), on an AVX-512
    # VNNI Xeon and an AVX2 EPYC (8-bit weights on the EPYC: 0.904)
    assert float(np.std(logit(ref_scores))) > 0.5
    assert np.corrcoef(logit(ref_scores), logit(scores))[0, 1] > 0.95
    assert np.corrcoef(ref_boxes.ravel(), boxes.ravel())[0, 1] > 0.99
