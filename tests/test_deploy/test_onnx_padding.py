"""Asymmetric SAME padding exported as ONNX Conv pads, not conv + Slice."""

import onnx
import pytest
import torch
import torch.nn as nn

from helpers import assert_export_keeps_outputs, deployed_with_effdet_weights
from mmdet_efficientdet.deploy import static_same_padding
from mmdet_efficientdet.deploy.onnx_export import (
    DetectorExport,
    export_onnx,
)
from mmdet_efficientdet.deploy.onnx_padding import (
    AsymmetricPadConv2d,
    asymmetric_conv_padding,
)
from mmdet_efficientdet.models.layers import Conv2dSame, CropStart


@pytest.mark.parametrize('kernel', [3, 5])
@pytest.mark.parametrize('size', [(16, 16), (15, 12), (9, 9)])
def test_padded_conv_equals_same_conv(kernel, size):
    torch.manual_seed(0)
    holder = nn.Sequential(Conv2dSame(4, 8, kernel, stride=2))
    x = torch.randn(1, 4, *size)
    with torch.no_grad():
        expected = holder(x)
    static_same_padding(holder, lambda: holder(x))
    crops = sum(isinstance(m, CropStart) for m in holder.modules())
    assert asymmetric_conv_padding(holder) == crops
    assert crops == (size[0] % 2 == 0 or size[1] % 2 == 0)
    with torch.no_grad():
        torch.testing.assert_close(holder(x), expected)
    if crops:
        top, left, bottom, right = holder[0].pads
        # SAME: the odd cell of padding after the input
        assert (bottom - top, right - left) == (
            1 - size[0] % 2,
            1 - size[1] % 2,
        )


def test_padded_conv_rejects_bad_pads():
    with pytest.raises(ValueError, match='pads'):
        AsymmetricPadConv2d(nn.Conv2d(2, 2, 3), (0, 1, 1))


def network_slices(graph: onnx.GraphProto) -> list:
    """Slice nodes that cut a tensor rather than a shape."""
    made_by = {out: node for node in graph.node for out in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == 'Slice'
        and made_by.get(node.input[0], node).op_type != 'Shape'
    ]


@pytest.mark.slow  # exports ONNX
def test_strided_convs_export_without_slice(tmp_path):
    # even: every strided conv pads (b, b + 1)
    model, reference = deployed_with_effdet_weights('lite0', 128)
    assert any(isinstance(m, CropStart) for m in reference.modules())
    wrapper = DetectorExport(model, (1, 3, 128, 128)).eval()
    assert not any(isinstance(m, CropStart) for m in model.modules())
    path = export_onnx(wrapper, str(tmp_path / 'lite0.onnx'))

    graph = onnx.load(path).graph
    assert network_slices(graph) == []
    pads = [
        tuple(attr.ints)
        for node in graph.node
        if node.op_type == 'Conv'
        for attr in node.attribute
        if attr.name == 'pads'
    ]
    assert (0, 0, 1, 1) in pads  # the stem: 3x3, stride 2

    assert_export_keeps_outputs(reference, wrapper, path)
