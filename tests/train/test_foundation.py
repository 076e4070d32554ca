"""The foundation encoder: generated pre-training clips, the shipped weights and where a run starts."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import REPO
from picojepa.core.clips import ClipSpec
from picojepa.train import checkpoint
from picojepa.train.cli import main
from picojepa.train.foundation import CARD, InitError, init_state, resample_positions, write_foundation
from picojepa.train.generated import GeneratedDataset, generate_clip
from picojepa.train.pretrain import build, start_from


def _tiny_run(tmp_path, recipe):
    """A pre-training checkpoint of `recipe`'s model, as a run writes it (untrained weights)."""
    model = build(recipe)
    path = tmp_path / "run" / "pretrain.pt"
    checkpoint.save({"kind": "pretrain", "recipe": recipe.to_dict(), "epoch": 0, "model": model.state_dict(),
                     "optimizer": {}, "history": [{"epoch": 0, "loss": 1.0}], "skipped": []}, path)
    return path, model


def test_generated_clips_move_and_repeat_only_for_the_same_seed_epoch_and_index():
    spec = ClipSpec(size=32, frames=8)
    a = generate_clip(np.random.default_rng([0, 0, 1]), spec)
    assert a.dtype == np.uint8 and a.shape == (8, 32, 32, 3)
    assert np.array_equal(a, generate_clip(np.random.default_rng([0, 0, 1]), spec))
    clips = [generate_clip(np.random.default_rng([0, 0, i]), spec) for i in range(20)]
    moving = [np.abs(c[1:].astype(int) - c[:-1]).mean() for c in clips]
    assert np.median(moving) > 1.0  # grey levels per pixel and frame: the clips are not stills
    data = GeneratedDataset(spec, videos=4, seed=3)
    first = data[2]["clip"]
    assert first.shape == (3, 8, 32, 32) and first.dtype == torch.float32 and len(data) == 4
    data.set_epoch(1)
    assert not torch.equal(first, data[2]["clip"])  # new clips every epoch


def test_a_run_starts_from_the_weights_it_is_given_with_positions_fitted_to_its_clip(tmp_path, smoke_recipe):
    ckpt, source = _tiny_run(tmp_path, smoke_recipe)
    out = write_foundation(ckpt, tmp_path / "weights", made_by="test")
    card = json.loads((tmp_path / "weights" / CARD).read_text())
    assert card["bytes"] == out.stat().st_size and len(card["sha256"]) == 64
    longer = dataclasses.replace(smoke_recipe, clip=dataclasses.replace(smoke_recipe.clip, frames=8),
                                 pretrain=dataclasses.replace(smoke_recipe.pretrain, init=str(out)))
    model = build(dataclasses.replace(longer, seed=5))
    start_from(model, longer)
    want = source.target.state_dict()
    for key, value in model.encoder.state_dict().items():
        if key == "pos_embed":
            assert value.shape[1] == 2 * want[key].shape[1]  # twice the time steps
        else:
            assert torch.equal(value, want[key]), key
    assert torch.equal(model.target.blocks[0].attn.qkv.weight, want["blocks.0.attn.qkv.weight"])
    assert init_state("scratch", longer) is None


def test_positions_resampled_to_the_same_grid_are_unchanged_and_keep_their_order():
    pos = torch.arange(2 * 2 * 2 * 4, dtype=torch.float32).reshape(1, 8, 4)
    assert torch.equal(resample_positions(pos, (2, 2, 2), (2, 2, 2)), pos)
    up = resample_positions(pos, (2, 2, 2), (4, 2, 2))
    assert up.shape == (1, 16, 4) and torch.all(up[0, -4:].mean(-1) > up[0, :4].mean(-1))


def test_corrupt_or_mismatched_weights_are_one_line_errors(tmp_path, smoke_recipe):
    ckpt, _ = _tiny_run(tmp_path, smoke_recipe)
    out = write_foundation(ckpt, tmp_path / "weights", made_by="test")
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    with pytest.raises(InitError, match="sha256 differs"):
        init_state(str(out), smoke_recipe)
    out2 = write_foundation(ckpt, tmp_path / "other", made_by="test")
    wider = dataclasses.replace(smoke_recipe, model=dataclasses.replace(smoke_recipe.model, embed_dim=64))
    with pytest.raises(InitError, match="another model.*embed_dim 32"):
        init_state(str(out2), wider)
    with pytest.raises(InitError, match="no such"):
        init_state(str(tmp_path / "missing.pt"), smoke_recipe)


def test_init_on_the_command_line_names_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    res = CliRunner().invoke(main, ["pretrain", "--config", str(REPO / "configs" / "foundation.yaml"),
                                    "--out", str(tmp_path / "run"), "--init", str(bad), "--no-progress",
                                    "--set", "pretrain.generated=4", "--set", "pretrain.epochs=1"])
    assert res.exit_code != 0 and "bad.pt" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_a_run_started_from_other_weights_reports_them_frozen_beside_its_own(tmp_path, smoke_recipe, smoke_data,
                                                                               smoke_run):
    """The report's yardstick of what pre-training on the user's clips added to where it started."""
    from picojepa.train.pipeline import run_all

    start = smoke_run[0] / "pretrain.pt"
    recipe = dataclasses.replace(smoke_recipe, pretrain=dataclasses.replace(smoke_recipe.pretrain, init=str(start)))
    report = run_all(recipe, smoke_data, tmp_path / "run", show_progress=False)
    assert 0 <= report.accuracy["init_probe"] <= 100
    assert "init_probe" not in smoke_run[1].accuracy  # a run from scratch has no such yardstick
    text = (tmp_path / "run" / "report.md").read_text()
    assert f"started from (`{start}`), frozen: **{report.accuracy['init_probe']:.2f}**" in text


def test_the_shipped_foundation_is_small_verified_and_fits_the_user_recipe():
    from picojepa.train.recipe_file import load_recipe
    from picojepa.train.foundation import FOUNDATION_DIR, WEIGHTS

    card = json.loads((FOUNDATION_DIR / CARD).read_text())
    assert (FOUNDATION_DIR / WEIGHTS).stat().st_size == card["bytes"] <= 5 * 2**20
    recipe = load_recipe(REPO / "configs" / "real.yaml")
    recipe = dataclasses.replace(recipe, pretrain=dataclasses.replace(recipe.pretrain, init="foundation"))
    state = init_state("foundation", recipe)
    model = build(recipe)
    start_from(model, recipe)
    assert torch.equal(model.encoder.patch_embed.weight, state["encoder.patch_embed.weight"])
    assert torch.equal(model.target.patch_embed.weight, state["encoder.patch_embed.weight"])


@pytest.mark.needs_torch_cuda
def test_pre_training_runs_on_cuda_from_generated_clips(tmp_path, smoke_recipe):
    """Training on a GPU: generated clips need no decoder, so this runs where torchcodec is absent
    (`python -m pytest -m needs_torch_cuda tests/train/test_foundation.py`)."""
    from picojepa.train.pretrain import pretrain

    pre = dataclasses.replace(smoke_recipe.pretrain, generated=32, epochs=1, warmup_epochs=0.5)
    torch.cuda.reset_peak_memory_stats()
    res = pretrain(dataclasses.replace(smoke_recipe, pretrain=pre), tmp_path, tmp_path / "run", show_progress=False)
    assert torch.cuda.max_memory_allocated() > 0 and np.isfinite(res.final_loss)
    assert (tmp_path / "run" / "pretrain.pt").is_file()


def test_weights_of_the_right_model_shape_but_a_wrong_tensor_are_one_line_errors(tmp_path, smoke_recipe):
    ckpt, model = _tiny_run(tmp_path, smoke_recipe)
    state = checkpoint.load(ckpt)
    state["model"]["target.norm.weight"] = torch.ones(7)  # tampered: not the model's width
    checkpoint.save(state, ckpt)
    recipe = dataclasses.replace(smoke_recipe, pretrain=dataclasses.replace(smoke_recipe.pretrain, init=str(ckpt)))
    with pytest.raises(InitError, match="does not fit this model"):
        start_from(build(recipe), recipe)
