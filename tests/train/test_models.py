import dataclasses

import pytest
import torch

from picojepa.core.clips import ClipSpec
from picojepa.train.config import ModelConfig
from picojepa.train.jepa import JEPA
from picojepa.train.masking import batch_masks
from picojepa.train.vit import VideoViT, video_vit

CLIP = ClipSpec(frames=4, size=32)
CFG = ModelConfig(patch_size=8, embed_dim=32, depth=2, heads=2, pred_dim=32, pred_heads=2, pred_depth=1)


def test_named_paper_size_matches_the_publication():
    m = video_vit("paper")
    assert m.grid == (4, 14, 14) and m.num_tokens == 784
    assert m.pos_embed.shape == (1, 784, 192) and len(m.blocks) == 8
    n = sum(p.numel() for p in m.parameters())
    assert 3.0e6 < n < 4.5e6


def test_encoder_output_shapes():
    enc = VideoViT(CFG, CLIP)
    x = torch.randn(2, 3, 4, 32, 32)
    assert enc(x).shape == (2, 32, 32)
    keep = torch.tensor([[0, 5, 9], [1, 2, 3]])
    assert enc(x, keep=keep).shape == (2, 3, 32)


def _perturb_masked(x, tgt_idx, grid, tubelet, patch):
    """Change the pixels of every masked tubelet of sample 0."""
    y = x.clone()
    _, h, w = grid
    for tok in tgt_idx[0].tolist():
        t, r = divmod(tok, h * w)
        i, j = divmod(r, w)
        y[0, :, t * tubelet:(t + 1) * tubelet, i * patch:(i + 1) * patch, j * patch:(j + 1) * patch] += 5.0
    return y


def test_context_encoder_never_sees_masked_tubelets():
    """The original leaked masked content into the context through attention; ours must not."""
    torch.manual_seed(0)
    model = JEPA(VideoViT(CFG, CLIP)).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    ctx, tgt = batch_masks("tube", model.encoder.grid, 0.75, [7])
    y = _perturb_masked(x, tgt, model.encoder.grid, 2, 8)
    with torch.no_grad():
        a, b = model.encoder(x, keep=ctx), model.encoder(y, keep=ctx)
        assert torch.allclose(a, b, atol=1e-6)
        # ...whereas the original formulation (all tokens, then gather) changes
        from picojepa.train.vit import gather_tokens

        assert not torch.allclose(gather_tokens(model.encoder(x), ctx), gather_tokens(model.encoder(y), ctx))


def test_ema_moves_target_towards_encoder_and_has_no_grad():
    torch.manual_seed(0)
    model = JEPA(VideoViT(CFG, CLIP))
    assert not any(p.requires_grad for p in model.target.parameters())
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = next(model.target.parameters()).clone()
    enc = next(model.encoder.parameters())
    model.update_target(0.9)
    after = next(model.target.parameters())
    torch.testing.assert_close(after, 0.9 * before + 0.1 * enc)


@pytest.mark.parametrize("teacher", ["ema", "frozen"])
def test_a_training_step_moves_the_teacher_only_when_it_follows_the_encoder(teacher):
    from picojepa.train.config import PretrainConfig
    from picojepa.train.pretrain import make_optimizer, train_step

    torch.manual_seed(0)
    model = JEPA(VideoViT(CFG, CLIP))
    cfg = PretrainConfig(teacher=teacher, ema=0.5, lr=1e-2)
    opt = make_optimizer(model, cfg)
    before = [p.clone() for p in model.target.parameters()]
    ctx, tgt = batch_masks("tube", model.encoder.grid, 0.5, [1, 2])
    train_step(model, model, opt, torch.randn(2, 3, 4, 32, 32), ctx, tgt, cfg)
    assert not torch.equal(next(model.encoder.parameters()), before[0])  # the student learned
    unchanged = all(torch.equal(a, b) for a, b in zip(before, model.target.parameters()))
    assert unchanged == (teacher == "frozen")


@pytest.mark.parametrize("teacher", ["ema", "frozen"])
def test_a_run_is_read_through_the_encoder_that_learned(tmp_path, teacher):
    """The classifiers read the EMA target of a run, or its student where the teacher was frozen
    (that target is the weights it started from)."""
    from picojepa.train import checkpoint
    from picojepa.train.config import PretrainConfig, Recipe
    from picojepa.train.pretrain import CKPT, load_encoder

    torch.manual_seed(0)
    model = JEPA(VideoViT(CFG, CLIP))
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    recipe = Recipe(model=CFG, clip=CLIP, pretrain=PretrainConfig(teacher=teacher))
    checkpoint.save({"kind": "pretrain", "recipe": recipe.to_dict(), "model": model.state_dict()}, tmp_path / CKPT)
    enc, _, _ = load_encoder(tmp_path)
    read = next(enc.parameters())
    assert torch.equal(read, next((model.encoder if teacher == "frozen" else model.target).parameters()))
    assert torch.equal(next(load_encoder(tmp_path, "target")[0].parameters()), next(model.target.parameters()))


def test_jepa_loss_backpropagates_to_encoder_and_predictor_only():
    torch.manual_seed(0)
    model = JEPA(VideoViT(CFG, CLIP), loss="l1")
    x = torch.randn(2, 3, 4, 32, 32)
    ctx, tgt = batch_masks("multiblock", model.encoder.grid, 0.5, [1, 2])
    targets, spread, rank = model.targets(x, tgt)
    loss = model(x, ctx, tgt, targets)
    loss.backward()
    assert spread > 0.1 and 1 <= rank <= CFG.embed_dim
    assert model.encoder.patch_embed.weight.grad is not None
    assert model.predictor.mask_token.grad is not None
    assert all(p.grad is None for p in model.target.parameters())


def test_effective_rank_tells_spread_from_dimensional_collapse():
    from picojepa.train.jepa import effective_rank

    g = torch.Generator().manual_seed(0)
    full = torch.randn(4000, 16, generator=g)
    assert effective_rank(full) > 15
    line = torch.randn(4000, 1, generator=g) * torch.ones(1, 16) + 5  # one direction, big std
    assert effective_rank(line) < 1.01 and line.std(0).mean() > 0.9
    two = torch.cat([torch.randn(4000, 2, generator=g), torch.zeros(4000, 14)], 1)
    assert 1.9 < effective_rank(two) < 2.01
    assert effective_rank(torch.ones(10, 4)) == 0.0


def test_pooling_mean_meanstd_and_max():
    from picojepa.train.heads import pool_tokens

    t = torch.tensor([[[1.0, 0.0], [3.0, -2.0]]])  # (B=1, N=2, D=2)
    assert pool_tokens(t).tolist() == [[2.0, -1.0]]
    ms = pool_tokens(t, "meanstd")
    torch.testing.assert_close(ms, torch.tensor([[2.0, -1.0, 1.0, 1.0]]), atol=1e-5, rtol=0)
    assert pool_tokens(t, "max").tolist() == [[3.0, 0.0]]
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_tokens(t, "median")


def test_meandelta_pooling_measures_change_between_time_steps_at_the_same_place():
    from picojepa.train.heads import pool_tokens

    # 2 time steps x 2 places, D=2: channel 0 changes by 2 at both places, channel 1 stays put
    t = torch.tensor([[[0.0, 5.0], [1.0, 7.0], [2.0, 5.0], [3.0, 7.0]]])
    got = pool_tokens(t, "meandelta", steps=2)
    torch.testing.assert_close(got, torch.tensor([[1.5, 6.0, 2.0, 0.0]]), atol=1e-3, rtol=0)
    # the same tokens read as one time step of 4 places cannot say how anything moved
    with pytest.raises(ValueError, match=">= 2 time steps"):
        pool_tokens(t, "meandelta", steps=1)
    with pytest.raises(ValueError, match=">= 2 time steps"):
        pool_tokens(t, "meandelta", steps=3)
    # a still clip has no change, whatever its content
    still = torch.randn(3, 1, 4, 8).repeat(1, 2, 1, 1).reshape(3, 8, 8)
    assert pool_tokens(still, "meandelta", steps=2)[:, 8:].max() < 1e-2


def test_meandelta_pooling_needs_a_token_grid_with_time():
    from picojepa.train.recipe_file import load_recipe, nest

    load_recipe("configs/smoke.yaml", nest({"classify.pool": "meandelta"}))  # 4 frames, tubelets of 2
    with pytest.raises(ValueError, match="meandelta"):
        load_recipe("configs/smoke.yaml", nest({"classify.pool": "meandelta", "model.tubelet": 4}))


def test_sincos_positions_are_fixed_distinct_and_smooth():
    from picojepa.train.predictor import build_predictor, sincos_3d

    e = sincos_3d((4, 8, 8), 96)[0]
    assert e.shape == (256, 96)
    assert torch.cdist(e, e).add(torch.eye(256) * 1e3).min() > 0.1, "every position distinct"
    # neighbours in space are closer than far-apart positions (what lets attention localise)
    assert torch.dist(e[0], e[1]) < torch.dist(e[0], e[7]) and torch.dist(e[0], e[8]) < torch.dist(e[0], e[56])
    pred = build_predictor(VideoViT(CFG, CLIP))
    assert "pos_embed" not in dict(pred.named_parameters()) and "pos_embed" in pred.state_dict()
    learned = build_predictor(VideoViT(dataclasses.replace(CFG, pred_pos="learned"), CLIP))
    assert learned.pos_embed.requires_grad


def test_variance_covariance_is_zero_for_whitened_features_and_high_for_collapsed_ones():
    from picojepa.train.jepa import variance_covariance

    torch.manual_seed(0)
    white = torch.randn(4096, 8) * 1.2
    collapsed = torch.randn(4096, 1).expand(4096, 8) * 0.1
    assert variance_covariance(white).item() < 0.1 < variance_covariance(collapsed).item()


def test_sigreg_is_near_zero_for_gaussian_rows_and_high_for_collapsed_or_stretched_ones():
    from picojepa.train.jepa import sigreg

    torch.manual_seed(0)
    gauss = torch.randn(4096, 16)
    collapsed = torch.randn(4096, 1).expand(4096, 16) * 0.05
    stretched = torch.randn(4096, 16) * 4.0
    near = sigreg(gauss).item()
    assert near < 0.01
    assert sigreg(collapsed).item() > 20 * near and sigreg(stretched).item() > 20 * near
    z = (torch.randn(512, 16) * 0.1).requires_grad_()
    sigreg(z).backward()  # the gradient pushes a too-narrow cloud outwards
    assert (z.grad * z).sum().item() < 0


def test_patchify_follows_the_encoders_token_order():
    from picojepa.train.jepa import patchify

    x = torch.zeros(1, 3, 4, 32, 32)
    x[0, :, 2:4, 8:16, 24:32] = 1.0  # tubelet t=1, row 1, column 3 of a (2, 4, 4) grid
    p = patchify(x, tubelet=2, patch=8)
    assert p.shape == (1, 32, 3 * 2 * 8 * 8)
    assert p[0].sum(-1).nonzero().flatten().tolist() == [1 * 16 + 1 * 4 + 3]


def test_anti_collapse_terms_train_the_encoder_and_the_pixel_head():
    torch.manual_seed(0)
    model = JEPA(VideoViT(CFG, CLIP), vicreg=1.0, pixel=1.0, sigreg=1.0)
    x = torch.randn(2, 3, 4, 32, 32)
    ctx, tgt = batch_masks("future", model.encoder.grid, 0.5, [1, 2])
    targets, _, _ = model.targets(x, tgt)
    plain = JEPA(VideoViT(CFG, CLIP))
    plain.load_state_dict(model.state_dict(), strict=False)
    loss = model(x, ctx, tgt, targets)
    assert loss.item() > plain(x, ctx, tgt, targets).item()  # the extra terms add to the loss
    loss.backward()
    assert model.pixel_head.weight.grad.abs().sum() > 0
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0


def test_the_motion_target_is_the_masked_tubelets_frame_differences_and_trains_its_head():
    torch.manual_seed(0)
    model = JEPA(VideoViT(CFG, CLIP), motion=1.0)
    still = torch.randn(1, 3, 1, 32, 32).repeat(2, 1, 4, 1, 1)  # nothing moves
    ctx, tgt = batch_masks("future", model.encoder.grid, 0.5, [1, 2])
    assert model._motion_target(still, tgt).abs().max().item() == 0.0
    moving = still.clone()
    moving[0, :, 3, :8, :8] += 1.0  # the last frame changes in the top-left patch of sample 0
    target = model._motion_target(moving, tgt)
    assert target[1].abs().max().item() == 0.0 and target[0].abs().max().item() > 0
    targets, _, _ = model.targets(moving, tgt)
    model(moving, ctx, tgt, targets).backward()
    assert model.motion_head.weight.grad.abs().sum() > 0
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0


def test_changemap_pooling_shows_where_and_when_the_tokens_change():
    from picojepa.train.heads import map_cells, pool_tokens

    # 3 time steps of a 4 x 4 token grid, D=2: only the token at row 0, column 3 changes, and only
    # from step 1 to step 2
    t = torch.zeros(1, 3, 4, 4, 2)
    t[0, 2, 0, 3] = torch.tensor([3.0, 4.0])
    out = pool_tokens(t.reshape(1, 48, 2), "changemap", steps=3)
    assert out.shape == (1, 2 * 2 + 2 * 16)
    where_when = out[0, 4:].reshape(2, 4, 4)
    assert where_when[0].max() < 1e-2  # nothing moved from step 0 to 1
    assert where_when[1].argmax().item() == 3 and where_when[1, 0, 3] > 3.0  # top right, then
    torch.testing.assert_close(out[0, :4], pool_tokens(t.reshape(1, 48, 2), "meandelta", steps=3)[0])
    assert [map_cells(s) for s in (8, 7, 6, 2)] == [4, 1, 3, 2]
    with pytest.raises(ValueError, match="square token grid"):
        pool_tokens(torch.zeros(1, 18, 2), "changemap", steps=3)
