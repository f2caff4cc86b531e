from dataclasses import asdict

import numpy as np
import pytest
import torch

from finegrain.detect.cascade import Cascade, CascadeSettings
from finegrain.detect.nets import NETS
from finegrain.detect.store import bundled_detector_path, load_cascade, save_cascade
from finegrain.errors import ConfigError, DataError, FinegrainError
from finegrain.legacy import convert


def test_save_load_round_trip_keeps_settings_and_outputs(tmp_path):
    torch.manual_seed(0)
    cascade = Cascade(settings=CascadeSettings(min_face=30, threshold_48=0.2))
    path = save_cascade(cascade, tmp_path / "det.safetensors", note="test")
    loaded = load_cascade(path)
    assert loaded.settings == cascade.settings
    windows = torch.rand(8, 1, 48, 48) * 255
    with torch.no_grad():  # stored in half precision: outputs agree to about 1e-3
        torch.testing.assert_close(loaded.nets["detect48"](windows), cascade.nets["detect48"](windows),
                                   rtol=0, atol=5e-3)
    assert load_cascade(path, min_face=40).settings.min_face == 40


def test_bad_detector_files_are_clear_errors(tmp_path, make_model):
    with pytest.raises(DataError, match="not found"):
        load_cascade(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a detector file at all")
    with pytest.raises(FinegrainError, match="garbage.safetensors: not a finegrain file"):
        load_cascade(garbage)
    torch.save({"something": "else"}, tmp_path / "other.pt")
    with pytest.raises(FinegrainError, match="finegrain convert"):
        load_cascade(tmp_path / "other.pt")
    with pytest.raises(FinegrainError, match="embedding file, where a detector file is needed"):
        load_cascade(make_model(tmp_path / "model.safetensors"))


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
    loaded = load_cascade(save_cascade(cascade, tmp_path / "new.safetensors"))
    assert {n: net.options() for n, net in loaded.nets.items()} == {n: net.options() for n, net in cascade.nets.items()}
    # A finegrain 0.1 file written before nets had options converts to fixed normalisation throughout.
    payload = {"format": "finegrain-face-detector", "version": 1, "settings": asdict(cascade.settings),
               "weights": {n: (cls() if n == "detect12" else cls(window_contrast=False)).state_dict()
                           for n, cls in NETS.items()},
               "metadata": {}}
    torch.save(payload, tmp_path / "old.pt")
    assert convert(tmp_path / "old.pt") == [tmp_path / "old.safetensors"]
    old = load_cascade(tmp_path / "old.safetensors")
    assert not any(net.options().get("window_contrast") for net in old.nets.values())
