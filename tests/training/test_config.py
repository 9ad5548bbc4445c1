"""Training configuration, recipes, learning-rate schedules (in-process, fast)."""
import argparse
import json
import math

import pytest

from gluon_inception.training import (
    ConfigError,
    LRSchedule,
    TrainConfig,
    add_arguments,
    config_from_args,
    list_recipes,
    load_recipe,
    lr_scale_factor,
    merge_for_resume,
)


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


# -- config and recipes ------------------------------------------------------------------------
def test_flags_override_recipe_which_overrides_defaults():
    cfg = _parse("--recipe", "chapter-adam", "--epochs", "60")
    assert cfg.optimizer == "adam" and cfg.lr == pytest.approx(1e-3)  # from the recipe
    assert cfg.epochs == 60  # the flag wins
    assert cfg.batch_size == 128 != TrainConfig().batch_size  # the recipe beats the default
    assert "epochs" in cfg.explicit and "optimizer" in cfg.explicit


def test_default_lr_depends_on_the_optimizer():
    assert _parse("--optimizer", "adam", "--demo").lr == pytest.approx(1e-3)
    assert TrainConfig(optimizer="sgd").finalize().lr == pytest.approx(0.1)
    assert TrainConfig(optimizer="nag").finalize().lr == pytest.approx(0.1)


def test_demo_flag_applies_the_demo_recipe_unless_another_is_named():
    demo = _parse("--demo")
    assert demo.recipe == "demo" and demo.image_size == load_recipe("demo")["image_size"]
    other = _parse("--demo", "--recipe", "chapter-sgd-1e-2")
    assert other.recipe == "chapter-sgd-1e-2" and other.optimizer == "sgd"


def test_shipped_recipes_are_valid_configs():
    recipes = list_recipes()
    shipped = {"chapter-sgd-1e-2", "chapter-sgd-1e-3", "chapter-adam", "recommended", "paper-distill", "demo"}
    assert shipped <= set(recipes)
    for name in recipes:
        assert recipes[name], "recipe %s needs a description" % name
        TrainConfig().updated(load_recipe(name), name).finalize()


def test_chapter_adam_recipe_is_the_chapter_table():
    cfg = TrainConfig().updated(load_recipe("chapter-adam"), "chapter-adam").finalize()
    sched = LRSchedule(cfg, iters_per_epoch=10, global_batch=3 * cfg.batch_size)
    assert cfg.epochs == 50
    assert [sched.at_epoch(e) for e in (0, 29, 30, 44, 45, 49)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])


def test_unknown_recipe_names_the_shipped_ones():
    with pytest.raises(ConfigError, match="chapter-adam"):
        load_recipe("no-such-recipe")


def test_recipe_file_with_unknown_option_is_rejected(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"description": "x", "settings": {"learning_rate": 0.1}}))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ConfigError, match="learning_rate"):
        config_from_args(parser.parse_args(["--recipe", str(path)]))


def test_yaml_recipe_file_is_read(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("description: mine\nsettings:\n  optimizer: nag\n  lr: 0.2\n")
    cfg = _parse("--recipe", str(path))
    assert cfg.optimizer == "nag" and cfg.lr == pytest.approx(0.2)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr-steps", "30,45", "--lr-factor", "0.1,0.1,0.1"], "one value or one per step"),
        (["--lr-steps", "45,30"], "increasing"),
        (["--lr-schedule", "cosine", "--lr-steps", "30"], "belong to --lr-schedule step"),
        (["--resume", "--start-epoch", "3"], "not both"),
        (["--warmup-epochs", "5", "--epochs", "5"], "shorter than --epochs"),
        (["--label-smoothing", "1.5"], "label-smoothing"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--data", "x", "--demo"], "not both"),
    ],
)
def test_contradictory_options_get_a_clear_error(argv, message):
    with pytest.raises(ConfigError, match=message):
        _parse(*argv)


def test_resume_takes_saved_config_except_what_this_command_set():
    saved = TrainConfig(optimizer="adam", lr=1e-3, epochs=50, batch_size=128, checkpoints="old").finalize().to_dict()
    cfg = _parse("--checkpoints", "new", "--resume", "--epochs", "60")
    merged = merge_for_resume(saved, cfg)
    assert merged.optimizer == "adam" and merged.batch_size == 128  # from the checkpoint
    assert merged.epochs == 60  # this command's flag
    assert merged.checkpoints == "new" and merged.resume  # run control always from this command


def test_precision_trains_in_three_words_and_refuses_int8_with_what_to_do():
    assert TrainConfig().precision == "float32"
    assert _parse("--precision", "bfloat16").precision == "bfloat16"
    assert TrainConfig().updated(load_recipe("recommended"), "recommended").finalize().precision == "float16"
    with pytest.raises(ConfigError) as caught:
        _parse("--precision", "int8")
    assert str(caught.value).startswith("--precision int8 is for inference: train in float32")
    assert "gluon-inception export --precision int8 --calib-data REC" in str(caught.value)
    with pytest.raises(ConfigError, match="--precision must be one of float32, float16, bfloat16, int8"):
        TrainConfig(precision="float64").finalize()
    with pytest.raises(ConfigError, match="unknown option.*dtype"):
        TrainConfig().updated({"dtype": "float16"}, "recipe 'old'")  # no alias in recipes either


def test_resume_reads_the_precision_of_a_checkpoint_that_recorded_dtype():
    saved = TrainConfig(checkpoints="old").finalize().to_dict()
    del saved["precision"]
    cfg = _parse("--checkpoints", "new", "--resume")
    assert merge_for_resume(dict(saved, dtype="bfloat16"), cfg).precision == "bfloat16"
    assert merge_for_resume(dict(saved, precision="float16", dtype="bfloat16"), cfg).precision == "float16"
    assert merge_for_resume(saved, cfg).precision == "float32"
    assert merge_for_resume(dict(saved, dtype="bfloat16"), _parse("--resume", "--precision", "float32")).precision == (
        "float32"
    )  # this command's flag still wins


# -- schedules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, expected", [("linear", 1.5), ("sqrt", math.sqrt(1.5)), ("none", 1.0)])
def test_lr_scaling_rules(rule, expected):
    assert lr_scale_factor(rule, 3 * 128, 256) == pytest.approx(expected)


def test_paper_schedule_drops_four_percent_every_eight_epochs():
    cfg = TrainConfig(lr=0.1, lr_scaling="none", lr_step_every=8, lr_factor=[0.96], epochs=40).finalize()
    sched = LRSchedule(cfg, iters_per_epoch=5, global_batch=256)
    assert sched.at_epoch(7) == pytest.approx(0.1)
    assert sched.at_epoch(8) == pytest.approx(0.096)
    assert sched.at_epoch(39) == pytest.approx(0.1 * 0.96**4)


def test_step_schedule_with_a_factor_per_step():
    cfg = TrainConfig(lr=1.0, lr_scaling="none", lr_steps=[2, 4], lr_factor=[0.5, 0.1], epochs=6).finalize()
    sched = LRSchedule(cfg, iters_per_epoch=3, global_batch=256)
    assert [sched.at_epoch(e) for e in range(6)] == pytest.approx([1, 1, 0.5, 0.5, 0.05, 0.05])


def test_warmup_then_cosine_reaches_the_final_lr():
    cfg = TrainConfig(lr=0.1, lr_schedule="cosine", warmup_epochs=2, final_lr=0.001, epochs=10).finalize()
    sched = LRSchedule(cfg, iters_per_epoch=10, global_batch=512)  # linear scaling: x2
    assert sched(0) == pytest.approx(0.0)
    assert sched(19) == pytest.approx(0.2)  # end of warmup = the scaled base lr
    assert sched(99) == pytest.approx(0.002)
    lrs = [sched(s) for s in range(20, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_poly_schedule_decays_to_the_final_lr():
    cfg = TrainConfig(lr=0.1, lr_scaling="none", lr_schedule="poly", poly_power=2, epochs=4).finalize()
    sched = LRSchedule(cfg, iters_per_epoch=5, global_batch=256)
    assert sched(0) == pytest.approx(0.1) and sched(19) == pytest.approx(0.0)
    assert sched(10) == pytest.approx(0.1 * (1 - 10 / 19) ** 2)


def test_schedule_is_a_function_of_the_step_so_resume_continues_it():
    cfg = TrainConfig(optimizer="adam", lr=1e-3, lr_scaling="none", lr_steps=[3], epochs=6).finalize()
    straight = LRSchedule(cfg, iters_per_epoch=4, global_batch=256)
    resumed = LRSchedule(cfg, iters_per_epoch=4, global_batch=256)
    assert [resumed(s) for s in range(12, 24)] == [straight(s) for s in range(12, 24)]


def test_new_lr_on_resume_sets_the_rate_and_keeps_the_shape():
    cfg = TrainConfig(lr=0.1, lr_scaling="none", lr_steps=[4], epochs=8).finalize()
    sched = LRSchedule(cfg, iters_per_epoch=2, global_batch=256)
    sched.override_from(epoch=2, lr=0.02)
    assert sched.at_epoch(2) == pytest.approx(0.02)
    assert sched.at_epoch(4) == pytest.approx(0.002)  # the drop at 4 still happens


def test_a_mid_epoch_checkpoint_continues_only_with_its_number_of_decoding_streams():
    from gluon_inception.training.checkpointing import check_position

    cfg = TrainConfig(batch_size=4).finalize()
    position = {"ranks": 3, "batch_size": 4, "steps": 10, "accumulate": 1, "streams": 2}
    meta = {"position": position, "paths": {"params": "ckpt/googlenet-0001-step000005.params"}}
    check_position(meta, cfg, 3, 10, 1, streams=2)
    with pytest.raises(ConfigError, match="with 2 decoding stream.* this run has 4: continue it with --data-threads 2"):
        check_position(meta, cfg, 3, 10, 1, streams=4)
