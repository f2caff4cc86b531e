"""--device: resolution, named errors, and (with a GPU) a CUDA training step and its model loaded on the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from finegrain import devices
from finegrain.cli import main
from finegrain.devices import DeviceError, autocast_dtype, resolve_device, to_device
from finegrain.encoders import load_encoder

ARGS = ["--backbone", "conv4", "--image-size", "16", "--embedding-size", "8", "--p", "3", "--k", "2",
        "--workers", "0", "--no-progress", "--epochs", "2", "--steps-per-epoch", "3", "--seed", "1"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_is_cuda_when_present_and_batches_stay_put_on_the_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    batch = (torch.zeros(2), [torch.ones(1)], "label")
    assert to_device(batch, torch.device("cpu")) is batch


def test_auto_on_a_gpu_machine_names_the_gpu_index_and_turns_tf32_off(monkeypatch):
    """What a GPU showed (an H200): ``torch.cuda.set_device`` refuses a bare ``cuda``, and cuDNN's default TF32
    moved vectors 4e-4 away from the CPU's. Simulated here, so a machine without a GPU checks it too."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert torch.backends.cudnn.allow_tf32 is False
    assert resolve_device("cuda") == torch.device("cuda", 0)


@pytest.mark.parametrize("has_bf16", [True, False])
def test_cpu_mixed_precision_only_where_the_cpu_has_bf16_units(monkeypatch, has_bf16):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: has_bf16)
    assert autocast_dtype(torch.device("cpu")) == (torch.bfloat16 if has_bf16 else None)
    assert autocast_dtype(torch.device("cpu"), "float32") is None


def test_float32_precision_turns_gpu_mixed_precision_off(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert autocast_dtype(torch.device("cuda", 0)) == torch.float16
    assert autocast_dtype(torch.device("cuda", 0), "float32") is None


@pytest.mark.parametrize(("has_bf16", "flags", "expected"), [
    (True, [], "bfloat16"), (True, ["--precision", "float32"], "float32"), (False, [], "float32")])
def test_a_cpu_run_records_the_precision_it_trained_in(monkeypatch, class_folder, tmp_path, has_bf16, flags,
                                                      expected):
    """The choice is the CPU's (simulated both ways); each epoch's row says what it was, and training under bf16
    still learns: its loss is finite and the model it writes embeds in float32."""
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: has_bf16)
    run = tmp_path / "run"
    assert main(["train", str(class_folder), "--out", str(run), *ARGS, "--device", "cpu", "--val", "0", *flags]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["precision"] for r in rows} == {expected} and all(np.isfinite(r["train_loss"]) for r in rows)
    vectors = load_encoder(run).encode_array(np.zeros((2, 16, 16, 3), np.uint8))
    assert vectors.dtype == np.float32 and np.isfinite(vectors).all()


def test_an_unknown_precision_is_a_named_error():
    from finegrain.config import TrainConfig
    from finegrain.errors import ConfigError

    with pytest.raises(ConfigError, match="--precision must be auto or float32, not 'half'"):
        TrainConfig(data="x", precision="half").validate()


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:1", ""])
def test_unknown_device_names_are_named_errors(name):
    with pytest.raises(DeviceError, match="--device must be one of"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")
def test_cuda_without_a_gpu_is_an_error_not_a_cpu_run():
    with pytest.raises(DeviceError, match="--device cuda"):
        resolve_device("cuda")


@pytest.mark.cuda
@cuda
def test_cuda_training_step_uses_mixed_precision_and_stays_finite():
    from finegrain.train.trainer import OptimConfig, Trainer

    class Task:
        monitor = ("train_loss", "min")

        def __init__(self):
            self.model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1))
            self.model(torch.zeros(1, 3, 8, 8))
            self.model.config = lambda: {}

        def steps_per_epoch(self):
            return 2

        def make_loader(self, epoch, seed):
            g = torch.Generator().manual_seed(seed)
            return [(torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 1, generator=g)) for _ in range(2)]

        def loss(self, batch):
            x, y = batch
            assert x.is_cuda and torch.is_autocast_enabled("cuda")
            return torch.nn.functional.mse_loss(self.model(x).float(), y)

        def loss_parameters(self):
            return []

        def on_epoch_start(self, epoch, epochs):
            return {}

        def validate(self):
            return {}

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    import tempfile

    task = Task()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(task, OptimConfig(epochs=1, progress=False, device="cuda"), tmp, tensorboard=False)
        assert trainer.amp in (torch.bfloat16, torch.float16)
        history = trainer.fit()
    assert np.isfinite(history[0]["train_loss"]) and history[0]["world_size"] == 1
    assert next(task.model.parameters()).device.type == "cpu"  # handed back on the CPU, ready to save


@pytest.mark.cuda
@cuda
@pytest.mark.slow
def test_a_model_trained_on_cuda_loads_and_embeds_on_the_cpu(class_folder, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(class_folder), "--out", str(run), *ARGS, "--device", "cuda", "--val", "0"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(np.isfinite(r["train_loss"]) for r in rows)
    encoder = load_encoder(run)  # model files hold CPU tensors: no map_location needed
    assert next(encoder.model.parameters()).device.type == "cpu"
    vectors = encoder.encode_array(np.zeros((3, 16, 16, 3), dtype=np.uint8))
    assert vectors.shape == (3, 8) and np.isfinite(vectors).all()
    # --resume on another device continues the same run (the device is a runtime setting).
    assert main(["train", str(class_folder), "--out", str(run), "--resume", "--device", "cpu", "--epochs", "3",
                 "--override", "--no-progress"]) == 0
