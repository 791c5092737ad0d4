"""The stem's strided conv as SpaceToDepth + a stride-1 conv: onnxruntime
gives the outputs of the original conv."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mmdet_efficientdet.deploy.onnx_space_to_depth import space_to_depth_stem


def conv_graph(kernel: int, pads, height: int, width: int, stride=2):
    """``images`` (1, 3, H, W) -> a conv with bias -> ``y``."""
    rng = np.random.default_rng(kernel + sum(pads))
    weight = rng.standard_normal((8, 3, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    node = helper.make_node(
        'Conv',
        ['images', 'w', 'b'],
        ['y'],
        name='/backbone/stem/conv/Conv',
        kernel_shape=[kernel, kernel],
        strides=[stride, stride],
        pads=list(pads),
    )
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [node],
        'stem',
        [value('images', TensorProto.FLOAT, [1, 3, height, width])],
        [value('y', TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(weight, 'w'),
            numpy_helper.from_array(bias, 'b'),
        ],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 17)]
    )


def run(model, x):
    session = ort.InferenceSession(
        model.SerializeToString(), providers=['CPUExecutionProvider']
    )
    return session.run(None, {'images': x})[0]


@pytest.mark.parametrize(
    'kernel,pads,height,width',
    [
        (3, (0, 0, 1, 1), 16, 16),  # TF SAME at an even size
        (3, (1, 1, 1, 1), 16, 12),  # PyTorch's symmetric padding
        (3, (1, 0, 1, 1), 20, 16),  # one side padded, the other not
        (5, (1, 1, 2, 2), 16, 16),
        (2, (0, 0, 0, 0), 8, 12),
    ],
)
def test_same_outputs(kernel, pads, height, width):
    model = conv_graph(kernel, pads, height, width)
    x = np.random.default_rng(1).standard_normal(
        (1, 3, height, width), np.float32
    )
    expected = run(model, x)
    assert space_to_depth_stem(model) == 1
    ops = [node.op_type for node in model.graph.node]
    assert ops == ['SpaceToDepth', 'Conv']
    conv = model.graph.node[1]
    assert helper.get_node_attr_value(conv, 'strides') == [1, 1]
    (weight,) = [i for i in model.graph.initializer if i.name != 'b']
    assert list(weight.dims[:2]) == [8, 12]
    got = run(model, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    'height,width,stride', [(15, 16, 2), (16, 16, 1), (16, 16, 3)]
)
def test_left_as_it_is(height, width, stride):
    """An odd size, or a stride other than the block: no rewrite."""
    model = conv_graph(3, (1, 1, 1, 1), height, width, stride)
    assert space_to_depth_stem(model) == 0
    assert [node.op_type for node in model.graph.node] == ['Conv']
