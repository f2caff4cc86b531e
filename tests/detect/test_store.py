import numpy as np
import pytest
import torch

from finegrain.detect.cascade import Cascade, CascadeSettings
from finegrain.detect.store import bundled_detector_path, load_cascade, save_cascade
from finegrain.errors import ConfigError, DataError


def test_save_load_round_trip_keeps_settings_and_outputs(tmp_path):
    torch.manual_seed(0)
    cascade = Cascade(settings=CascadeSettings(min_face=30, threshold_48=0.2))
    path = save_cascade(cascade, tmp_path / "det.pt", note="test")
    loaded = load_cascade(path)
    assert loaded.settings == cascade.settings
    windows = torch.rand(8, 1, 48, 48) * 255
    with torch.no_grad():  # stored in half precision: outputs agree to about 1e-3
        torch.testing.assert_close(loaded.nets["detect48"](windows), cascade.nets["detect48"](windows),
                                   rtol=0, atol=5e-3)
    assert load_cascade(path, min_face=40).settings.min_face == 40


def test_bad_detector_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_cascade(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a readable detector file"):
        load_cascade(garbage)
    torch.save({"something": "else"}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a finegrain face detector"):
        load_cascade(tmp_path / "other.pt")


def test_settings_errors_name_the_flag():
    with pytest.raises(ConfigError, match="--min-face"):
        CascadeSettings(min_face=8).validate()
    with pytest.raises(ConfigError, match="--threshold-24"):
        CascadeSettings().replace(threshold_24=1.5)


def test_the_bundled_detector_ships_small_and_loads():
    path = bundled_detector_path()
    assert path.is_file() and path.stat().st_size < 3_000_000
    cascade = load_cascade()
    found = cascade.detect(np.full((120, 160), 128, dtype=np.uint8))  # a flat image has no faces
    assert len(found.boxes) == 0


def test_net_options_round_trip_and_older_files_load_as_fixed_normalisation(tmp_path):
    cascade = Cascade()
    assert cascade.nets["detect48"].window_contrast and not cascade.nets["calibrate48"].window_contrast
    loaded = load_cascade(save_cascade(cascade, tmp_path / "new.pt"))
    assert {n: net.options() for n, net in loaded.nets.items()} == {n: net.options() for n, net in cascade.nets.items()}
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    del payload["architecture"]  # as written before nets had options
    torch.save(payload, tmp_path / "old.pt")
    old = load_cascade(tmp_path / "old.pt")
    assert not any(net.options().get("window_contrast") for net in old.nets.values())
