"""Every example script runs end to end in its reduced mode, writes its pictures and prints its lessons.

Each script is run as a student would run it (``python examples/<script>.py --quick``), in a
subprocess, with its output folder pointed at a temporary directory (``TINYPIX_EXAMPLES_OUT``).
These tests check that the scripts run, not that the models learn: the reduced modes train for a
few steps on a handful of tiny scenes, so a lesson line may say NOT shown there; what is checked
is that every script ends with its ``lesson: <claim> — shown (...)`` lines. The full runs and
their figures are in examples/README.md; tests/test_lesson_*.py hold the lessons to their direction.
"""
import re
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# script -> the pictures it must write
SCRIPTS = {
    "depth": ["predictions.png"],
    "normals": ["predictions.png"],
    "multitask": ["predictions.png"],
    "transfer": ["predictions.png"],
    "init_and_decay": ["init_statistics.png", "weight_decay.png", "shrinkage.png"],
    "skips": ["predictions.png"],
    "init_statistics": [],
    "augmentation": ["augmented_samples.png"],
    "autoencoder": ["reconstructions.png", "interpolation.png"],
    "edges_to_image": ["sketch_output_truth.png"],
    "wrong_ways": ["predictions.png", "stacks.png", "windows.png"],
    "transpose_conv": ["conv_matrix.png", "conv_matrix_1d.png", "tiles_and_checkerboard.png"],
    "lecture_pictures": ["unpooling.png", "conv_matrix_1d.png", "tiles_and_checkerboard.png", "receptive_field.png",
                         "patch_windows.png"],
    "from_scratch": ["curves.png", "predictions.png"],
    "look_inside": ["kernels.png", "feature_maps.png"],
    "custom_op": [],
    "quickstart": [],
}
NO_TABLE = {"custom_op", "quickstart"}          # they print a few lines, not a table
LESSON = re.compile(r"^lesson: .+ — (shown|NOT shown) \(.+\)$", re.MULTILINE)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_runs_in_reduced_mode(script, tmp_path):
    env = dict(os.environ, TINYPIX_EXAMPLES_OUT=str(tmp_path), MPLBACKEND="Agg")
    env.pop("TINYPIX_EXAMPLES_QUICK", None)
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, f"{script}.py"), "--quick"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"examples/{script}.py --quick exited with {result.returncode}\n"
                                    f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    out = tmp_path / script
    assert LESSON.search(result.stdout), f"examples/{script}.py printed no lesson line:\n{result.stdout[-2000:]}"
    for name in SCRIPTS[script]:
        path = out / name
        assert path.is_file(), f"examples/{script}.py --quick did not write {name}; it wrote {sorted(os.listdir(out))}"
        with open(path, "rb") as f:
            assert f.read(8) == PNG_SIGNATURE, f"{path} is not a PNG file"
    assert script in NO_TABLE or "|" in result.stdout, f"examples/{script}.py printed no table:\n{result.stdout[-2000:]}"

