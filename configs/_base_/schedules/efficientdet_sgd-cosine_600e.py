# The official schedule of D7 and D7x: 600 epochs (the cosine decay
# follows max_epochs).
_base_ = './efficientdet_sgd-cosine_300e.py'

max_epochs = 600
train_cfg = dict(max_epochs=max_epochs)
