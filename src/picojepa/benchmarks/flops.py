"""FLOPs per clip, two ways: counted by PyTorch on the real module, and from the config by formula.

A multiply-add is 2 FLOPs. Only matrix products are counted (convolution, linear layers,
attention's two products); normalisation, softmax and activations are a few percent more and are
left out, as usual. PyTorch's counter does not see the fused CPU attention kernel
(scaled_dot_product_attention on CPU), so its count is compared with the formula's count without
attention, and the formula's total (attention included) is what GFLOP/s are computed from.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def counted(module: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on a zero input of `input_shape` (batch included), counted by
    torch.utils.flop_counter (a mode that records every aten matrix product and its shapes)."""
    module = module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as mode:
        module(torch.zeros(input_shape))
    return int(mode.get_total_flops())


def formula(model_cfg, clip, classes: int, heads: int) -> dict:
    """Encoder and head FLOPs of one clip from the configuration alone."""
    d, p, k = model_cfg.embed_dim, model_cfg.patch_size, model_cfg.tubelet
    n = (clip.frames // k) * (clip.size // p) ** 2
    hidden = int(d * model_cfg.mlp_ratio)
    patch = 2 * n * (3 * k * p * p) * d
    block = 2 * n * d * 3 * d + 2 * 2 * n * n * d + 2 * n * d * d + 2 * 2 * n * d * hidden
    attention = model_cfg.depth * 2 * 2 * n * n * d
    encoder = patch + model_cfg.depth * block
    head = 2 * d * classes * heads
    return {"tokens": n, "encoder": encoder, "attention": attention,
            "encoder_without_attention": encoder - attention, "heads": head, "total": encoder + head}
