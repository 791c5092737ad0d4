"""Norm defaults shared by backbone, neck and head."""

# TF's batch-norm defaults: epsilon 1e-3, decay 0.99 (= momentum 0.01);
# TF-trained weights expect them.
BN_TF = dict(type='BN', eps=1e-3, momentum=0.01)
