# EfficientDet-D7X fine-tuning: the reference config rescaled to the
# variant (its input size, backbone and ImageNet weights from the scaling
# table), at a batch of 2 and the rate scaled to it.
_base_ = './efficientdet_lite0_1xb8-60e_photo-objects.py'
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 'd7x'))
batch_size = 2
# in place: scaled_config's dataloaders replace the inherited ones
train_dataloader['batch_size'] = batch_size
optim_wrapper = dict(optimizer=dict(lr=_base_['lr_per_image'] * batch_size))
auto_scale_lr = dict(base_batch_size=batch_size)
