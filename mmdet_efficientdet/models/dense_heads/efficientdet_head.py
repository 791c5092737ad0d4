"""The EfficientDet class / box head on mmdet's AnchorHead machinery."""

import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import (
    DepthwiseSeparableConvModule,
    build_activation_layer,
    build_conv_layer,
    build_norm_layer,
)
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import cat_boxes
from mmdet.utils import ConfigType, InstanceList, OptMultiConfig
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers import BN_TF, add_conv_bias, conv_cfg_for
from .fast_anchor_head import FastAnchorHead, top_candidates

# what an init_cfg's `layer` must name to reach the head's convs, whichever
# the padding (mmengine matches a module's class and its direct bases only)
CONV_LAYERS = ['Conv2d', 'Conv2dSame']
# TF's initialisation of the towers and predictions (variance scaling:
# normal, fan in, gain 1)
TF_INIT = dict(
    type='Kaiming',
    layer=CONV_LAYERS,
    mode='fan_in',
    nonlinearity='linear',
    distribution='normal',
)

# Official box loss: Huber(delta=0.1) summed over the 4 deltas of each
# positive, over (positives + 1) * 4, weighted 50. mmdet's SmoothL1 with
# beta = delta is Huber / delta, and the head's avg_factor is positives + 1,
# hence 50 * 0.1 / 4.
HUBER_DELTA = 0.1
BOX_LOSS_WEIGHT = 50.0
SMOOTH_L1_WEIGHT = BOX_LOSS_WEIGHT * HUBER_DELTA / 4


@MODELS.register_module()
class EfficientDetHead(FastAnchorHead):
    """EfficientDet's class and box networks.

    Each tower is ``stacked_convs`` depthwise-separable 3x3 convs (full
    3x3 convs with ``use_depthwise=False``) whose weights are shared by all
    levels, each followed by a norm that is *not* shared (one per level per
    repeat) and the activation; the prediction is one more such conv.
    Everything else - anchors, targets, losses, decoding - is
    :class:`~mmdet.models.dense_heads.AnchorHead`'s (through
    :class:`~.fast_anchor_head.FastAnchorHead`: the same results, faster on
    the CPU), with the changes that make it the official algorithm:

    - losses are normalised by the number of positive anchors in the batch
      plus one (mmdet's default: positives, at least 1 per image);
    - box deltas whose target is exactly 0 are left out of the box loss,
      as the official ``box_targets != 0`` weights do;
    - the top ``test_cfg.nms_pre`` (anchor, class) scores are taken over
      all levels together, not per level.

    With the default losses and
    :class:`~..task_modules.EfficientDetAssigner` the losses equal the
    official focal loss and ``50 * huber`` (see ``SMOOTH_L1_WEIGHT``).

    State-dict keys (public API; weight converters map onto them), ``t`` in
    ``cls`` / ``reg``, ``r`` a repeat, ``l`` a level:
    ``{t}_convs.{r}.depthwise_conv.conv.weight``,
    ``{t}_convs.{r}.pointwise_conv.conv.{weight,bias}``,
    ``{t}_norms.{r}.{l}.{weight,bias,running_mean,running_var}`` and
    ``conv_{t}.{depthwise_conv.conv.weight,pointwise_conv.conv.{weight,
    bias}}``. Output channels are anchor-major (``a * C + c`` for classes,
    ``a * 4 + j`` for deltas) with anchors ordered by
    :class:`~..task_modules.EfficientDetAnchorGenerator`, as in TF; the
    deltas are mmdet's ``(dx, dy, dw, dh)``, where TF's box net predicts
    ``(dy, dx, dh, dw)``.

    Args:
        num_classes (int): Number of classes (no background).
        in_channels (int): Input width (the BiFPN's).
        feat_channels (int): Tower width. Defaults to 64.
        stacked_convs (int): Convs per tower. Defaults to 3.
        use_depthwise (bool): Depthwise-separable convs, EfficientDet's.
            Defaults to True. False puts full 3x3 convs in the towers and
            the predictions, as RetinaNet's head has (7-8 times the
            head's weights and MACs: Lite0's, 64 wide, 251k against 36k
            for one class, 710k against 85k for 90; state-dict keys
            ``{t}_convs.{r}.{weight,bias}`` and ``conv_{t}.{weight,bias}``,
            so EfficientDet checkpoints no longer load into the head).
            ``configs/finetune/`` uses it: a few hundred iterations from
            ImageNet backbone weights fit boxes better with it
            (``docs/own_data.md``).
        padding (str): ``'same'`` (TF SAME) or ``'symmetric'``.
        conv_bias (bool): Keep the tower convs' bias in front of the norm,
            as TF checkpoints do. Defaults to True.
        norm_cfg (dict): Norm of the towers. Defaults to TF's BN.
        act_cfg (dict): Activation after each norm. Defaults to SiLU.
        prior_prob (float): Initial foreground probability of the class
            prediction's bias. Defaults to 0.01.
        anchor_generator, bbox_coder, loss_cls, loss_bbox (dict): As in
            :class:`AnchorHead`; the defaults are the official ones.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None: mmcv's ``ConvModule`` init of the separable
            convs (Kaiming normal, fan out, ReLU gain; PyTorch's default
            for full convs), the class bias at ``prior_prob``. TF
            initialises them with variance scaling (``TF_INIT``);
            fine-tuning the quickstart for 12 epochs, one run each,
            reached bbox mAP 0.733 with mmcv's and 0.680 with TF's. An
            init_cfg's ``layer`` must name ``Conv2dSame`` too
            (``CONV_LAYERS``): with ``padding='same'`` the convs are
            ``Conv2dSame``, and mmengine matches a module's class and its
            direct bases only, so ``'Conv2d'`` alone misses them.

    Example:
        >>> import torch
        >>> self = EfficientDetHead(80, 64).eval()
        >>> feats = [torch.rand(1, 64, s, s) for s in (16, 8, 4, 2, 1)]
        >>> cls_scores, bbox_preds = self(feats)
        >>> [tuple(c.shape[1:]) for c in cls_scores][:2]
        [(720, 16, 16), (720, 8, 8)]
        >>> tuple(bbox_preds[0].shape[1:])
        (36, 16, 16)
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 64,
        stacked_convs: int = 3,
        use_depthwise: bool = True,
        padding: str = 'same',
        conv_bias: bool = True,
        norm_cfg: ConfigType = BN_TF,
        act_cfg: ConfigType = dict(type='SiLU'),
        prior_prob: float = 0.01,
        anchor_generator: ConfigType = dict(
            type='EfficientDetAnchorGenerator',
            strides=[8, 16, 32, 64, 128],
            anchor_scale=4.0,
        ),
        bbox_coder: ConfigType = dict(
            type='DeltaXYWHBBoxCoder',
            target_means=(0.0, 0.0, 0.0, 0.0),
            target_stds=(1.0, 1.0, 1.0, 1.0),
        ),
        loss_cls: ConfigType = dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=1.5,
            alpha=0.25,
            loss_weight=1.0,
        ),
        loss_bbox: ConfigType = dict(
            type='SmoothL1Loss', beta=HUBER_DELTA, loss_weight=SMOOTH_L1_WEIGHT
        ),
        init_cfg: OptMultiConfig = None,
        **kwargs,
    ) -> None:
        if stacked_convs < 1:
            raise ValueError(
                f'stacked_convs must be >= 1, got {stacked_convs}'
            )
        if not 0 < prior_prob < 1:
            raise ValueError(f'prior_prob must be in (0, 1), got {prior_prob}')
        self.stacked_convs = stacked_convs
        self.use_depthwise = use_depthwise
        self.conv_cfg = conv_cfg_for(padding)
        self.conv_bias = conv_bias
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.prior_prob = prior_prob
        super().__init__(
            num_classes,
            in_channels,
            feat_channels=feat_channels,
            anchor_generator=anchor_generator,
            bbox_coder=bbox_coder,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            init_cfg=init_cfg,
            **kwargs,
        )

    def _conv(self, in_channels: int, out_channels: int, bias: bool):
        if not self.use_depthwise:
            return build_conv_layer(
                self.conv_cfg,
                in_channels,
                out_channels,
                3,
                padding=1,
                bias=bias,
            )
        # TF: no bias on the depthwise half; mmcv's module shares one `bias`
        # argument between both halves, so the pointwise bias is added after
        conv = DepthwiseSeparableConvModule(
            in_channels,
            out_channels,
            3,
            padding=1,
            bias=False,
            conv_cfg=self.conv_cfg,
            norm_cfg=None,
            act_cfg=None,
        )
        if bias:
            add_conv_bias(conv.pointwise_conv)
        return conv

    def _tower(self) -> Tuple[nn.ModuleList, nn.ModuleList]:
        convs, norms = nn.ModuleList(), nn.ModuleList()
        channels = self.in_channels
        for _ in range(self.stacked_convs):
            convs.append(
                self._conv(channels, self.feat_channels, self.conv_bias)
            )
            norms.append(
                nn.ModuleList(
                    build_norm_layer(self.norm_cfg, self.feat_channels)[1]
                    for _ in range(self.prior_generator.num_levels)
                )
            )
            channels = self.feat_channels
        return convs, norms

    def _init_layers(self) -> None:
        self.cls_convs, self.cls_norms = self._tower()
        self.reg_convs, self.reg_norms = self._tower()
        self.act = build_activation_layer(self.act_cfg)
        self.conv_cls = self._conv(
            self.feat_channels,
            self.num_base_priors * self.cls_out_channels,
            True,
        )
        self.conv_reg = self._conv(
            self.feat_channels,
            self.num_base_priors * self.bbox_coder.encode_size,
            True,
        )

    def init_weights(self) -> None:
        super().init_weights()
        init_cfg = self.init_cfg
        if not (
            isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'
        ):
            nn.init.constant_(
                self.output_conv(self.conv_cls).bias,
                bias_init_with_prob(self.prior_prob),
            )

    def output_conv(self, conv: nn.Module) -> nn.Conv2d:
        """The convolution that writes the output of ``conv``, one of the
        head's tower or prediction convs (its pointwise half when they are
        separable)."""
        return conv.pointwise_conv.conv if self.use_depthwise else conv

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], ...]:
        """Class scores and box deltas of every level, finest first."""
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(
                f'{type(self).__name__} was built for '
                f'{self.prior_generator.num_levels} levels (one norm per '
                f'level), got {len(x)} feature maps'
            )
        return multi_apply(self.forward_single, x, range(len(x)))

    def forward_single(self, x: Tensor, level: int) -> Tuple[Tensor, Tensor]:
        """Class scores and box deltas of the feature map of ``level``."""
        return (
            self._run_tower(
                x, level, self.cls_convs, self.cls_norms, self.conv_cls
            ),
            self._run_tower(
                x, level, self.reg_convs, self.reg_norms, self.conv_reg
            ),
        )

    def _run_tower(
        self,
        x: Tensor,
        level: int,
        convs: nn.ModuleList,
        norms: nn.ModuleList,
        predict: nn.Module,
    ) -> Tensor:
        for conv, level_norms in zip(convs, norms):
            x = self.act(level_norms[level](conv(x)))
        return predict(x)

    def get_targets(
        self,
        anchor_list: List[List[Tensor]],
        valid_flag_list: List[List[Tensor]],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: Optional[InstanceList] = None,
        unmap_outputs: bool = True,
        return_sampling_results: bool = False,
    ) -> tuple:
        """:meth:`AnchorHead.get_targets` as the official loss sees them.

        - ``avg_factor`` is the number of positive anchors in the batch
          plus one (official ``num_positives_sum``), for both losses;
        - a box delta target that is exactly 0 gets weight 0: the official
          box loss is weighted by ``box_targets != 0``, so it happens
          whenever a ground-truth centre or size coincides with an
          anchor's.
        """
        targets = super().get_targets(
            anchor_list,
            valid_flag_list,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore,
            unmap_outputs,
            return_sampling_results=True,
        )
        labels, label_weights, bbox_targets, bbox_weights = targets[:4]
        bbox_weights = [
            weights * (target != 0).to(weights.dtype)
            for weights, target in zip(bbox_weights, bbox_targets)
        ]
        sampling_results = targets[5]
        num_pos = sum(r.pos_inds.numel() for r in sampling_results)
        extra = (sampling_results,) if return_sampling_results else ()
        return (
            labels,
            label_weights,
            bbox_targets,
            bbox_weights,
            num_pos + 1.0,
            *extra,
            *targets[6:],
        )

    def _predict_by_feat_single(
        self,
        cls_score_list: List[Tensor],
        bbox_pred_list: List[Tensor],
        score_factor_list: List[Optional[Tensor]],
        mlvl_priors: List[Tensor],
        img_meta: dict,
        cfg: ConfigType,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> InstanceData:
        """Detections of one image, candidates chosen as officially.

        The ``cfg.nms_pre`` best (anchor, class) scores over all levels
        (official ``max_detection_points``), those above ``cfg.score_thr``,
        decoded and clipped, then :meth:`_bbox_post_process` (rescale,
        class-wise ``cfg.nms``, ``cfg.max_per_img``).
        """
        cfg = copy.deepcopy(self.test_cfg if cfg is None else cfg)
        logits, index = top_candidates(cls_score_list, cfg.get('nms_pre', -1))
        num_classes = self.cls_out_channels
        deltas = torch.cat(
            [
                b.permute(1, 2, 0).reshape(-1, self.bbox_coder.encode_size)
                for b in bbox_pred_list
            ]
        )
        scores = logits.sigmoid()
        keep = scores > cfg.get('score_thr', 0)
        scores, index = scores[keep], index[keep]
        anchor_index = torch.div(index, num_classes, rounding_mode='floor')
        priors = cat_boxes(mlvl_priors)[anchor_index]
        results = InstanceData()
        results.bboxes = self.bbox_coder.decode(
            priors, deltas[anchor_index], max_shape=img_meta['img_shape']
        )
        results.scores = scores
        results.labels = index % num_classes
        return self._bbox_post_process(
            results=results,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms,
            img_meta=img_meta,
        )
