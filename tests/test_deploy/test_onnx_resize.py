"""static_resize: constant integer scales for upsampling to a traced size,
the same pixels, and resizes it cannot write so left alone."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_efficientdet.deploy.onnx_resize import static_resize


class UpToInput(nn.Module):
    """Pool ``x`` with ceiling, upsample back to ``x``'s traced size."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride, padding=1, ceil_mode=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.pool(x), size=x.shape[-2:], mode='nearest')
        return up + x


def export(module: nn.Module, size: int, path: str) -> onnx.ModelProto:
    x = torch.zeros(1, 2, size, size)
    torch.onnx.export(module, (x,), path, opset_version=17, dynamo=False)
    return onnx.load(path)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        model.SerializeToString(), providers=['CPUExecutionProvider']
    )
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize(
    'stride, size, ops',
    [
        (2, 8, {'Resize'}),  # 4 -> 8: scale 2
        (2, 5, {'Resize', 'Slice'}),  # 3 -> 5: scale 2, cropped
        (4, 12, {'Resize'}),  # 3 -> 12: scale 4
    ],
)
def test_rewrite_gives_the_same_pixels(tmp_path, stride, size, ops):
    model = export(UpToInput(stride), size, str(tmp_path / 'm.onnx'))
    x = np.random.default_rng(0).standard_normal((1, 2, size, size))
    x = x.astype(np.float32)
    expected = run(model, x)
    assert static_resize(model) == 1
    onnx.checker.check_model(model)
    kinds = {node.op_type for node in model.graph.node}
    assert ops <= kinds
    assert not kinds & {'Shape', 'Gather', 'Cast'}, kinds
    (resize,) = [n for n in model.graph.node if n.op_type == 'Resize']
    assert resize.input[2] in {i.name for i in model.graph.initializer}
    np.testing.assert_array_equal(run(model, x), expected)


def test_resize_that_is_no_integer_scale_is_left(tmp_path):
    # 3 -> 7 picks floor(i * 3 / 7) = 0 0 0 1 1 2 2, which no i // k gives
    class UpTo7(nn.Module):
        def forward(self, x):
            return F.interpolate(x[..., :3, :3], size=(7, 7), mode='nearest')

    model = export(UpTo7(), 8, str(tmp_path / 'm.onnx'))
    before = [n.op_type for n in model.graph.node]
    assert static_resize(model) == 0
    assert [n.op_type for n in model.graph.node] == before
