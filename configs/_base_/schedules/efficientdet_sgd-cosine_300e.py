# The official EfficientDet schedule: SGD, linear warm-up for one epoch,
# cosine decay to 0 over 300 epochs, EMA of the weights.
# runtime (default_scope, hooks, logging, env) from mmdet; the hooks
# below override its defaults
_base_ = 'mmdet::_base_/default_runtime.py'
from mmdet_efficientdet.engine.schedules import warmup_cosine  # noqa: E402

max_epochs = 300
# 0.08 per 64 images; the configs' nominal batch is 8 GPUs x 16 = 128
base_lr = 0.16
warmup_lr = 0.008  # official lr_warmup_init, absolute

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=4e-5),
    # decay on conv / linear weights only (official regex
    # '.*(kernel|weight):0$'): not norms, biases or BiFPN fusion weights
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'fusion.weight': dict(decay_mult=0.0)},
    ),
    clip_grad=dict(max_norm=10.0, norm_type=2),
)
# decays to 0 at train_cfg's max_epochs, whatever a child sets
param_scheduler = warmup_cosine(warmup_lr / base_lr)
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=128)

# Hooks on top of mmdet's defaults; a child config that sets custom_hooks
# replaces this list: keep the checks.
custom_hooks = [
    # official moving_average_decay 0.9998
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=2e-4,
        update_buffers=True,
        priority=49,
    ),
    # two checks that stop a run before it wastes its epochs: the head's
    # num_classes against the dataset's classes (mmdet's hook, before each
    # train / val epoch), and the loss and weights for NaN / inf after
    # every iteration (ours)
    dict(type='NumClassCheckHook'),
    dict(type='CheckFiniteHook'),
    # every pipeline at the variant's input size (a dataloader assigned
    # after scaled_config brings back the parent's sizes)
    dict(type='InputSizeCheckHook'),
    # fine-tuning: load_from a checkpoint of other classes loads all but
    # the class prediction, and says so in one line
    dict(type='SkipMismatchedWeightsHook'),
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3)
)
