# The official schedule of D7 and D7x: 600 epochs.
_base_ = './efficientdet_sgd-cosine_300e.py'
from mmdet_efficientdet.engine.schedules import warmup_cosine  # noqa: E402

max_epochs = 600
param_scheduler = warmup_cosine(max_epochs, _base_.warmup_lr / _base_.base_lr)
train_cfg = dict(max_epochs=max_epochs)
