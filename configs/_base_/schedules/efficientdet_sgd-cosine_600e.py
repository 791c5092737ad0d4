# The official schedule of D7 and D7x: 600 epochs.
_base_ = './efficientdet_sgd-cosine_300e.py'

max_epochs = 600
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=_base_.warmup_lr / _base_.base_lr,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.0,
        T_max=max_epochs - 1,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(max_epochs=max_epochs)
