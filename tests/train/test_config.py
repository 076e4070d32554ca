import pytest

from picojepa.train.config import ConfigError

from picojepa.train.recipe_file import load_recipe

from conftest import REPO

CONFIGS = REPO / "configs"


def test_paper_recipe_is_the_published_one():
    r = load_recipe(CONFIGS / "paper.yaml")
    assert (r.clip.size, r.clip.frames, r.clip.frame_step) == (224, 8, 1)
    m = r.model
    assert (m.embed_dim, m.depth, m.heads, m.mlp_ratio, m.tubelet, m.patch_size) == (192, 8, 8, 3.0, 2, 16)
    assert (m.pred_depth, m.pred_heads) == (2, 4)
    p = r.pretrain
    assert (p.mask, p.mask_ratio, p.ema, p.lr, p.predictor_lr_mult, p.weight_decay) == ("tube", 0.75, 0.996, 2e-4, 2.0, 0.05)
    assert (p.batch_size, p.epochs, p.warmup_epochs, p.final_lr, p.grad_clip, p.loss) == (10, 4, 1.0, 1e-6, 1.0, "mse")
    c = r.classify
    assert (c.lr, c.weight_decay, c.warmup_epochs, c.batch_size, c.epochs, c.val_fraction) == (1e-4, 0.05, 2.0, 16, 4, 0.2)


@pytest.mark.parametrize("name", ["base", "paper", "demo", "smoke"])
def test_every_shipped_recipe_loads(name):
    r = load_recipe(CONFIGS / f"{name}.yaml")
    assert r.name == name or name == "base"


def test_recipe_overrides_only_what_differs():
    demo = load_recipe(CONFIGS / "demo.yaml")
    smoke = load_recipe(CONFIGS / "smoke.yaml")
    assert smoke.clip.frame_step == demo.clip.frame_step == 2  # inherited through demo
    assert smoke.pretrain.grad_clip == 1.0  # inherited from base
    assert smoke.pretrain.mask == demo.pretrain.mask == "future"  # through demo
    assert load_recipe(CONFIGS / "paper.yaml").model.pred_pos == "sincos"  # from base


def _write(tmp_path, text):
    (tmp_path / "base.yaml").write_text((CONFIGS / "base.yaml").read_text())
    p = tmp_path / "r.yaml"
    p.write_text("base: base.yaml\n" + text)
    return p


@pytest.mark.parametrize("text,message", [
    ("pretrain:\n  epoch: 3\n", "pretrain.epoch: unknown key"),
    ("pretrain:\n  epochs: three\n", "pretrain.epochs: expected an integer"),
    ("pretrain:\n  epochs: 0\n", "must be >= 1"),
    ("clip:\n  size: -64\n", "size must be an integer in [8, 2048]"),
    ("pretrain:\n  mask: random\n", "pretrain.mask: must be one of"),
    ("clip:\n  frames: 7\n", "not divisible by model.tubelet"),
    ("clip:\n  size: 100\n", "not divisible by model.patch_size"),
    ("model:\n  heads: 5\n", "not divisible by 5"),
    ("classify:\n  finetune: 1\n", "expected true/false"),
    ("classify:\n  finetune: true\n  finetune_epochs: 0\n", "finetune_epochs must be >= 1"),
    ("clip:\n  mean: [0.5, 0.5]\n", "expected a list of 3"),
    ("classify:\n  head: attentive\n  fit: lbfgs\n", "fit: 'lbfgs' fits a linear head"),
    ("classify:\n  fit: newton\n", "classify.fit: must be one of"),
    ("classify:\n  l2: -1\n", "l2: must be in [0, 1000]"),
])
def test_bad_recipes_are_rejected_with_file_key_reason(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        load_recipe(_write(tmp_path, text))
    assert str(e.value).startswith(str(tmp_path / "r.yaml") + ": ")
    assert message in str(e.value)


def test_missing_base_and_bad_yaml(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml: cannot read"):
        load_recipe(p)
    p.write_text("clip: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(p)


def test_the_variance_covariance_term_applies_only_below_its_video_count():
    from picojepa.train.config import PretrainConfig

    cfg = PretrainConfig(vicreg=1.0, vicreg_below_videos=1000)
    assert cfg.vicreg_for(240) == 1.0 and cfg.vicreg_for(999) == 1.0
    assert cfg.vicreg_for(1000) == 0.0 and cfg.vicreg_for(1520) == 0.0
    assert PretrainConfig(vicreg=0.5).vicreg_for(10 ** 6) == 0.5  # 0: always on
    demo = load_recipe(REPO / "configs" / "demo.yaml").pretrain
    assert demo.vicreg_for(240) == 1.0 and demo.vicreg_for(1520) == 0.0


def test_a_negative_regulariser_weight_is_refused_by_name():
    from picojepa.train.config import PretrainConfig

    for key in ("vicreg", "pixel", "motion", "sigreg"):
        with pytest.raises(ValueError, match="sigreg: must be >= 0"):
            PretrainConfig(**{key: -0.5})


def test_a_run_trained_before_a_recipe_key_existed_still_resumes_and_evaluates(tmp_path):
    """A key added later (at a default that keeps the old behaviour) is no recipe change: the
    checkpoint's stored recipe lacks it, and --resume, classify and evaluate must still accept it."""
    from picojepa.train import checkpoint
    from picojepa.train.recipe_file import load_recipe

    now = load_recipe(REPO / "configs" / "smoke.yaml").to_dict()
    old = {**now, "pretrain": {k: v for k, v in now["pretrain"].items() if k not in ("motion", "flip", "crop_scale")}}
    checkpoint.check_resume({"recipe": old}, now, tmp_path / "pretrain.pt")
    checkpoint.check_resume({"recipe": old}, now, tmp_path / "pretrain.pt", checkpoint.EVALUATE_FREE)
    changed = {**old, "pretrain": {**old["pretrain"], "epochs": old["pretrain"]["epochs"] + 1}}
    with pytest.raises(checkpoint.CheckpointError, match="pretrain.epochs"):
        checkpoint.check_resume({"recipe": changed}, now, tmp_path / "pretrain.pt")
