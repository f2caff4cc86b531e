"""The command line: every subcommand has --help; bad input is one line naming the flag or file."""

import pytest

from finegrain.cli import COMMANDS, build_parser, main

EXPECTED = {"train", "eval", "score", "oneshot", "index", "search", "demo", "verify", "fewshot", "pseudolabel",
            "normalize", "combine", "explain", "identify", "identification", "embed", "export", "convert", "detect",
            "detector train", "detector eval", "serve", "track",
            "track-eval", "predict"}


def test_every_command_is_registered():
    assert set(COMMANDS) == EXPECTED


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command.split(), "--help"])
    assert exit_.value.code == 0
    assert "usage: finegrain" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["train", "data", "--epochs", "0"], "--epochs"),
        (["train", "data", "--loss", "hinge"], "--loss"),
        (["train", "data", "--k", "1"], "--k"),
        (["train", "data", "--augment", "wild"], "--augment"),
        (["train", "data", "--val", "1.5"], "--val"),
        (["train", "data", "--backbone", "conv4", "--stem-stride", "2"], "--stem-stride"),
        (["train", "data", "--backbone", "resnet", "--lbp-radius", "2"], "--lbp-radius"),
        (["train", "data", "--backbone", "lbp", "--lbp-cell", "0"], "--lbp-cell"),
        (["train", "data", "--scale", "30"], "--scale"),  # triplet (the default loss) has no logit scale
        (["train", "data", "--loss", "normsoftmax", "--margin-start", "0.1"], "--margin-start"),
        (["verify", "run", "--tta", "rotate"], "--tta"),
        (["train", "data", "--widths", "16,32"], "--widths"),  # conv4 has four convolutions
        (["train", "data", "--widths", "16,x"], "--widths"),
        (["train", "data", "--widths", "16,32,64,128", "--width", "0.5"], "--widths"),
    ],
)
def test_bad_option_values_name_the_flag(argv, flag, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unparseable_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "data", "--epochs", "many"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--epochs" in err and len(err.strip().splitlines()) == 1


def test_missing_data_and_model_are_clear_errors(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), str(tmp_path)]) == 2
    assert "no trained model" in capsys.readouterr().err
    assert main(["search", str(tmp_path), "q.jpg"]) == 2
    assert "not a finegrain index" in capsys.readouterr().err


def test_widths_sets_each_convolution_and_replaces_the_default_width():
    from finegrain.config import TrainConfig
    from finegrain.models.registry import create_backbone

    cfg = TrainConfig(data="data", widths="16,32,64,128").validate()
    assert cfg.width is None and create_backbone(cfg.backbone, **cfg.backbone_kwargs()).config()["widths"] == [
        16, 32, 64, 128]
    assert TrainConfig(data="data", width=1.0).validate().widths is None  # a user's --width replaces the default
