"""Fine-tune from a checkpoint whose head predicts other classes."""

import logging
from typing import List, Tuple

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

# a tensor only EfficientDet's separable head has
SEPARABLE_HEAD_KEY = 'bbox_head.conv_cls.pointwise_conv.conv.weight'


@HOOKS.register_module()
class SkipMismatchedWeightsHook(Hook):
    """Leave out of ``load_from`` every tensor of another shape than the
    model's, and say so in one log line.

    A COCO checkpoint (90 or 80 classes) loaded into a detector of N
    classes differs only in the class prediction. mmengine loads
    ``load_from`` non-strictly and warns about each mismatch separately,
    after EMAHook has already copied the checkpoint into its average. This
    hook runs first (``after_load_checkpoint``, priority ``VERY_HIGH``):
    it removes the mismatched tensors from the checkpoint - they keep the
    model's initialisation - and logs which and why. A checkpoint with
    EfficientDet's separable head loaded into a head of full convs
    (``use_depthwise=False``, as in ``configs/finetune/``) shares no head
    tensor with it; the hook says so and how to load the head. Resuming is
    left alone: a resumed run must fit its checkpoint exactly.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner._resume:
            return
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else (runner.model)
        )
        state = checkpoint.get('state_dict', checkpoint)
        own = model.state_dict()
        if SEPARABLE_HEAD_KEY in state and SEPARABLE_HEAD_KEY not in own:
            print_log(
                f"load_from: the checkpoint's bbox_head is EfficientDet's "
                f"depthwise-separable one and the model's has full convs "
                f'(bbox_head.use_depthwise=False): none of the '
                f'{sum(k.startswith("bbox_head.") for k in state)} head '
                f'tensors loads, the head keeps its initialisation and only '
                f'the rest of the detector loads. To load the head too, set '
                f'model.bbox_head.use_depthwise=True',
                logger='current',
                level=logging.WARNING,
            )
        skipped = mismatched(state, own)
        if not skipped:
            return
        for key, _, _ in skipped:
            del state[key]
        shown = ', '.join(
            f'{key} {tuple(theirs)} -> {tuple(ours)}'
            for key, theirs, ours in skipped
        )
        print_log(
            f'load_from: skipped {len(skipped)} of {len(state) + len(skipped)}'
            f" tensors whose shape is not the model's (checkpoint -> model;"
            f' e.g. a head for another number of classes), they keep their '
            f'initialisation: {shown}',
            logger='current',
            level=logging.WARNING,
        )


def mismatched(state: dict, own: dict) -> List[Tuple[str, tuple, tuple]]:
    """(key, checkpoint shape, model shape) of tensors both hold with
    different shapes."""
    return [
        (key, tuple(value.shape), tuple(own[key].shape))
        for key, value in state.items()
        if key in own
        and hasattr(value, 'shape')
        and tuple(value.shape) != tuple(own[key].shape)
    ]
