"""Layout rewrites for onnxruntime: same numbers, no Mul by a constant and
no broadcast Mul left in the exported network."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers import SELayer
from onnx import TensorProto, helper, numpy_helper, shape_inference

from helpers import assert_export_keeps_outputs, deployed_with_effdet_weights
from mmdet_efficientdet.deploy.onnx_export import (
    DetectorExport,
    export_onnx,
)
from mmdet_efficientdet.deploy.onnx_layout import (
    BroadcastSE,
    ConvReLU6,
    ConvWeightedSum,
    fusion_weights,
    nchwc_friendly,
)
from mmdet_efficientdet.deploy.onnx_quantize import (
    QUANTIZED_SCOPES,
    broadcast_gates,
)
from mmdet_efficientdet.models.necks.bifpn_layer import FeatureFusion


@pytest.mark.parametrize('method', ['fast', 'softmax'])
def test_conv_weighted_sum_equals_fusion(method):
    torch.manual_seed(0)
    fusion = FeatureFusion(3, method)
    with torch.no_grad():
        fusion.weight.copy_(torch.tensor([0.3, -0.2, 1.7]))
    feats = [torch.randn(2, 8, 5, 6) for _ in range(3)]
    with torch.no_grad():
        expected = fusion(feats)
        got = ConvWeightedSum(fusion_weights(fusion), 8)(feats)
    # x * w is one rounding whether Mul or 1x1 conv: equal to the bit
    assert torch.equal(got, expected)


def test_broadcast_se_equals_se():
    torch.manual_seed(0)
    se = SELayer(8, ratio=4).eval()
    x = torch.randn(2, 8, 7, 5)
    with torch.no_grad():
        assert torch.equal(BroadcastSE(se)(x), se(x))


def test_nchwc_friendly_leaves_sum_fusion():
    class Node(nn.Module):  # stands in for a container of the modules
        def __init__(self):
            super().__init__()
            self.sum = FeatureFusion(2, 'sum')
            self.se = SELayer(8, ratio=4)

    node = Node()
    assert nchwc_friendly(node) == dict(fusion=0, se=1, relu6=0)
    assert isinstance(node.sum, FeatureFusion)
    assert isinstance(node.se, BroadcastSE)


def gate_graph(factor: str = 'x') -> onnx.ModelProto:
    """``factor * resize(g)``, ``g`` a ``1 x 1`` map repeated to ``x``'s
    size; ``factor`` ``'x'`` or ``'w'``, a scalar constant."""
    scales = numpy_helper.from_array(
        np.array([1, 1, 3, 4], np.float32), 'scales'
    )
    weight = numpy_helper.from_array(np.array(0.5, np.float32), 'w')
    nodes = [
        helper.make_node('GlobalAveragePool', ['x'], ['g'], name='pool'),
        helper.make_node(
            'Resize', ['g', '', 'scales'], ['up'], name='up', mode='nearest'
        ),
        helper.make_node('Mul', [factor, 'up'], ['y'], name='mul'),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        'gate',
        [value('x', TensorProto.FLOAT, [1, 2, 3, 4])],
        [value('y', TensorProto.FLOAT, [1, 2, 3, 4])],
        [scales, weight],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 17)]
    )


def test_broadcast_gates_drops_the_repeat():
    model = gate_graph()
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4), np.float32)

    def run(m):
        session = ort.InferenceSession(
            m.SerializeToString(), providers=['CPUExecutionProvider']
        )
        return session.run(None, {'x': x})[0]

    expected = run(model)
    assert broadcast_gates(model) == 1
    assert [n.op_type for n in model.graph.node] == [
        'GlobalAveragePool',
        'Mul',
    ]
    # its scales go too: onnxruntime warns of unused initializers
    assert [init.name for init in model.graph.initializer] == ['w']
    np.testing.assert_array_equal(run(model), expected)
    # a repeated map times a scalar is no gate: the repeat sets the shape
    assert broadcast_gates(gate_graph('w')) == 0


@pytest.mark.slow  # exports ONNX
def test_d0_export_keeps_products_elementwise(tmp_path):
    model, reference = deployed_with_effdet_weights('d0', 128)
    wrapper = DetectorExport(model, (1, 3, 128, 128)).eval()
    path = export_onnx(wrapper, str(tmp_path / 'd0.onnx'))

    inferred = shape_inference.infer_shapes(onnx.load(path)).graph
    constants = {init.name for init in inferred.initializer} | {
        out
        for node in inferred.node
        if node.op_type == 'Constant'
        for out in node.output
    }
    shapes = {
        info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in inferred.value_info
    }
    muls = [
        node
        for node in inferred.node
        if node.op_type == 'Mul' and node.name.startswith(QUANTIZED_SCOPES)
    ]
    assert len(muls) >= 16  # swish and the 16 gates of B0
    for mul in muls:
        assert not set(mul.input) & constants, mul.name
        assert shapes[mul.input[0]] == shapes[mul.input[1]], mul.name

    assert_export_keeps_outputs(reference, wrapper, path)


def test_conv_relu6_equals_relu6():
    x = torch.linspace(-50, 50, 100_001).view(1, 1, -1, 1).repeat(1, 3, 1, 1)
    got = ConvReLU6(3)(x)
    torch.testing.assert_close(got, F.relu6(x), atol=2.4e-7, rtol=0)
    assert got.min() == 0 and got.max() == 6


@pytest.mark.slow  # exports ONNX
def test_lite0_export_leaves_no_relu6_to_reorder(tmp_path):
    """Lite0 at 320 (levels 40 ... 5, 3: one odd upsampling per layer):
    every ReLU6 follows a conv, every resize has constant scales, and the
    outputs are the model's."""
    model, reference = deployed_with_effdet_weights('lite0', 320)
    wrapper = DetectorExport(model, (1, 3, 320, 320)).eval()
    relu6 = [m for m in model.modules() if isinstance(m, ConvReLU6)]
    assert len(relu6) == 24  # 8 nodes x 3 layers
    path = export_onnx(wrapper, str(tmp_path / 'lite0.onnx'))

    graph = onnx.load(path).graph
    producer = {out: node for node in graph.node for out in node.output}
    clips = [n for n in graph.node if n.op_type == 'Clip']
    assert clips
    for clip in clips:
        assert producer[clip.input[0]].op_type == 'Conv', clip.name
    initializers = {init.name for init in graph.initializer}
    resizes = [n for n in graph.node if n.op_type == 'Resize']
    assert len(resizes) == 12
    for resize in resizes:
        assert resize.input[2] in initializers, resize.name
    assert sum(n.op_type == 'Slice' for n in graph.node) == 3

    assert_export_keeps_outputs(reference, wrapper, path)
