"""The exported post-processing's candidate selection equals ``TopK``."""

import io

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mmdet_efficientdet.deploy.onnx_nms import top_pairs


def distinct_logits(n, anchors, classes, seed=0, step=1e-3):
    """Logits without ties, ``step`` apart, so that every order is
    defined."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randperm(n * anchors * classes, generator=g).float()
    return (values * step - 4).reshape(n, anchors, classes)


@pytest.mark.parametrize(
    'shape, k',
    [
        ((1, 600, 7), 100),  # two steps
        ((2, 600, 7), 599),  # two steps, each image on its own
        ((1, 600, 7), 600),  # k = anchors: one TopK
        ((1, 50, 3), 150),  # all of them
        ((3, 200, 1), 20),  # one class
    ],
)
def test_top_pairs_equals_one_topk(shape, k):
    n, anchors, classes = shape
    logits = distinct_logits(*shape)
    top, anchor, label = top_pairs(logits, k)
    expected, index = logits.reshape(n, -1).topk(k, dim=1)
    torch.testing.assert_close(top, expected, rtol=0, atol=0)
    assert torch.equal(anchor * classes + label, index)


def test_top_pairs_takes_several_classes_of_one_anchor():
    """The best anchors hold many of the best logits: all are found,
    including those below other anchors' maxima."""
    logits = distinct_logits(1, 300, 10, seed=1)
    logits[0, 7] += 10  # every class of anchor 7 beats all others
    logits[0, 8, 3] += 10
    top, anchor, label = top_pairs(logits, 12)
    assert anchor[0, :11].tolist().count(7) == 10
    expected, index = logits.reshape(1, -1).topk(12, dim=1)
    torch.testing.assert_close(top, expected, rtol=0, atol=0)
    assert torch.equal(anchor * 10 + label, index)


class TopPairs(torch.nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, logits):
        return top_pairs(logits, self.k)


# 2**-21: one float32 step at 4, two below it; 'one class': each anchor's
# best class far above the rest, so that the k best logits are the k
# anchors' maxima and the k-th is the threshold itself
@pytest.mark.parametrize('step', [1e-3, 2**-21, 'one class'])
def test_top_pairs_in_onnxruntime(step):
    """The exported steps (the low logits raised to just under the
    threshold) give onnxruntime's ``TopK`` of all logits, also when the
    logits lie one or two float steps apart or the threshold is one of
    them."""
    shape, k = (2, 500, 9), 120
    if step == 'one class':
        logits = distinct_logits(*shape, seed=2) - 20
        best = distinct_logits(2, 500, 1, seed=3)
        logits.scatter_(2, torch.randint(0, 9, (2, 500, 1)), best)
    else:
        logits = distinct_logits(*shape, seed=2, step=step)
    assert len(set(logits.flatten().tolist())) == logits.numel()
    f = io.BytesIO()
    torch.onnx.export(
        TopPairs(k),
        (logits,),
        f,
        input_names=['logits'],
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(
        f.getvalue(), providers=['CPUExecutionProvider']
    )
    top, anchor, label = session.run(None, {'logits': logits.numpy()})
    flat = logits.numpy().reshape(2, -1)
    index = np.argsort(-flat, axis=1, kind='stable')[:, :k]
    np.testing.assert_array_equal(top, np.take_along_axis(flat, index, 1))
    np.testing.assert_array_equal(anchor * 9 + label, index)
