"""``--device`` on every command that runs a network: ``cpu`` works end to end, a GPU this machine lacks is one
named line (nothing computed), and on a CUDA machine the GPU gives the CPU's vectors, scores and boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from finegrain.cli import COMMANDS, main
from finegrain.detect.faces import FaceDetector
from finegrain.devices import DeviceError
from finegrain.encoders import load_encoder
from finegrain.serve.settings import ServeSettings

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")

# Every command that runs a network, and so takes --device (training's own is a TrainConfig field).
NETWORK_COMMANDS = {"eval", "score", "embed", "index", "search", "identify", "identification", "verify", "detect",
                    "serve", "predict"}


def test_every_network_command_has_the_device_flag():
    for name in NETWORK_COMMANDS:
        flags = {n for a in COMMANDS[name].args for n in a.names}
        assert "--device" in flags, name


@pytest.fixture
def gallery(tiny_model, class_folder, tmp_path, capsys):
    index = tmp_path / "idx"
    assert main(["index", str(tiny_model), str(class_folder), "--out", str(index), "--device", "cpu"]) == 0
    capsys.readouterr()
    return index


def test_device_cpu_everywhere(tiny_model, make_model, class_folder, gallery, tmp_path, capsys):
    one, two = sorted(class_folder.rglob("*.png"))[:2]
    scorer = make_model(tmp_path / "scorer.safetensors", kind="score")
    images = sorted(class_folder.rglob("*.png"))
    gallery_list, probe_list = tmp_path / "gallery.txt", tmp_path / "probes.txt"
    gallery_list.write_text("".join(f"{p} {p.parent.name}\n" for p in images[::2]))
    probe_list.write_text("".join(f"{p} {p.parent.name}\n" for p in images[1::2]))
    runs = [
        ["eval", str(tiny_model), str(class_folder), "--out", str(tmp_path / "e")],
        ["score", str(scorer), str(one)],
        ["embed", str(tiny_model), str(class_folder), "--out", str(tmp_path / "v.npy")],
        ["search", str(gallery), str(one), "-k", "3"],
        ["identify", str(gallery), str(one)],
        ["identification", str(tiny_model), "--gallery", str(gallery_list), "--probes", str(probe_list),
         "--out", str(tmp_path / "i")],
        ["verify", str(tiny_model), str(one), str(two), "--threshold", "0.5"],
        ["detect", str(one)],
    ]
    for argv in runs:
        assert main([*argv, "--device", "cpu"]) == 0, argv
        capsys.readouterr()
    on_cpu = load_encoder(tiny_model, device="cpu")
    assert next(on_cpu.model.parameters()).device.type == "cpu"
    assert ServeSettings(model=str(tiny_model), data=str(tmp_path / "d"), device="cpu").device == "cpu"


@no_gpu
@pytest.mark.parametrize("name", sorted(NETWORK_COMMANDS - {"serve"}))
def test_a_gpu_this_machine_lacks_is_one_named_line(name, tiny_model, class_folder, gallery, tmp_path, capsys):
    one = str(sorted(class_folder.rglob("*.png"))[0])
    argv = {"eval": [str(tiny_model), str(class_folder)], "score": [str(tiny_model), one],
            "embed": [str(tiny_model), one, "--out", str(tmp_path / "v.npy")], "search": [str(gallery), one],
            "identify": [str(gallery), one], "verify": [str(tiny_model), one, one, "--threshold", "0.5"],
            "identification": [str(tiny_model), "--gallery", str(class_folder), "--probes", str(class_folder)],
            "detect": [one], "predict": [str(tiny_model), one], "index": [str(tiny_model), str(class_folder),
                                                                         "--out", str(tmp_path / "new")]}[name]
    assert main([name, *argv, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device cuda" in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "new").exists() and not (tmp_path / "v.npy").exists()


@no_gpu
def test_the_service_refuses_a_missing_gpu_before_starting(tiny_model, tmp_path):
    with pytest.raises(DeviceError, match="--device cuda"):
        ServeSettings(model=str(tiny_model), data=str(tmp_path / "d"), device="cuda")
    with pytest.raises(DeviceError, match="--device must be one of"):
        ServeSettings(model=str(tiny_model), data=str(tmp_path / "d"), device="tpu")


@pytest.mark.cuda
@cuda
def test_on_a_gpu_vectors_scores_and_boxes_match_the_cpu(tiny_model, make_model, images, tmp_path):
    for model in (tiny_model, make_model(tmp_path / "scorer.safetensors", kind="score")):
        cpu, gpu = load_encoder(model), load_encoder(model, device="cuda")
        assert next(gpu.model.parameters()).device.type == "cuda"
        assert np.allclose(cpu.encode_array(images), gpu.encode_array(images), atol=1e-4)
    # A random photo may hold no face, so compare the nets' own outputs on windows as well as the boxes.
    rng = np.random.default_rng(0)
    windows = torch.from_numpy(rng.uniform(0, 1, size=(64, 1, 24, 24)).astype(np.float32))
    cpu_det, gpu_det = FaceDetector.load(device="cpu"), FaceDetector.load(device="cuda")
    assert np.allclose(cpu_det.cascade.face_probability(24, windows), gpu_det.cascade.face_probability(24, windows),
                       rtol=1e-2, atol=1e-8)  # these probabilities are ~1e-5: relative, not absolute
    photo = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    boxes = [[f.box for f in det.detect(photo)] for det in (cpu_det, gpu_det)]
    assert np.allclose(np.array(boxes[0]).reshape(-1, 4), np.array(boxes[1]).reshape(-1, 4), atol=1e-2)
    assert json.dumps(load_encoder(tiny_model, device="cuda").describe())  # the description is device-free
