"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


@pytest.mark.slow
def test_python_api_example_runs(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks()
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)  # the example writes runs/api-example relative to the working folder
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert (tmp_path / "runs" / "api-example" / "model.safetensors").exists()
    assert namespace["vectors"].shape == (20, 128)
    assert np.allclose(np.linalg.norm(namespace["vectors"], axis=1), 1.0, atol=1e-5)
    assert namespace["accuracy"] > 0.3  # chance is 0.05
    assert "20-way one-shot accuracy" in capsys.readouterr().out


def test_face_detection_example_runs(tmp_path, monkeypatch, capsys):
    import cv2

    shared_data = README.parents[1] / "shared" / "data"
    scene = shared_data / "cmu-mit-faces" / "test_scenes" / "test_jpg" / "voyager.jpg"
    monkeypatch.chdir(tmp_path)
    if scene.is_file():  # three faces in a real photo
        cv2.imwrite("group-photo.jpg", cv2.imread(str(scene)))
    else:  # still runs the example as written, on an image without faces
        cv2.imwrite("group-photo.jpg", np.full((120, 160, 3), 90, np.uint8))
    namespace: dict = {}
    exec(compile(_python_blocks()[1], str(README), "exec"), namespace)
    faces = namespace["faces"]
    assert all(f.crop.shape == (112, 112, 3) for f in faces)
    if scene.is_file():
        assert len(faces) >= 2
        assert len(capsys.readouterr().out.splitlines()) == len(faces)
