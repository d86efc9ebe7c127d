"""The notebook companion to the "Pixel Labeling" lecture runs top to bottom and shows what it says.

examples/notebooks/pixel_labeling.ipynb (committed without outputs) is executed as a student
would run it, in a Jupyter kernel, from a temporary working directory. Then its outputs are read:
every cell ran (the conv-transpose cell asserts conv_transpose2d == C^T @ y and would have
raised), the training loss fell, the held-out mIoU is above a floor, and the prediction and
curve figures came out as PNG pictures.

Needs nbclient, nbformat and ipykernel (all in the ``test`` extra); skips without them.
"""
import os
import re
import sys

import pytest

nbformat = pytest.importorskip("nbformat", reason="executing the notebook needs nbformat: pip install -e '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="executing the notebook needs nbclient: pip install -e '.[test]'")
ipykernel_spec = pytest.importorskip("ipykernel.kernelspec",
                                     reason="the notebook runs in an IPython kernel: pip install ipykernel")
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # noqa: E402  (nbclient depends on it)
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples", "notebooks", "pixel_labeling.ipynb")
# Measured held-out mIoU after the notebook's 5 epochs: 0.742 (epoch 4: 0.63). The floor leaves room
# for the float reordering of other machines, and still fails if training stops working.
MIOU_FLOOR = 0.55
CELL_TIMEOUT = 300  # seconds; the training cell is the long one


class ThisInterpreter(KernelSpecManager):
    """The registered kernel specs, each launched as an IPython kernel of the Python running pytest.

    ipykernel registers 'python3' in the venv (share/jupyter/kernels/python3) with argv 'python -m
    ipykernel_launcher ...', and jupyter_client runs a bare 'python' as sys.executable; but a
    'python3' spec found earlier on the Jupyter path (~/.local/share/jupyter, say) can name another
    interpreter by its path, one with another tinypix or none. This spec manager rules that out.
    """

    def get_kernel_spec(self, kernel_name):
        spec = super().get_kernel_spec(kernel_name)
        spec.argv = ipykernel_spec.make_ipkernel_cmd(executable=sys.executable)
        return spec


def stream_text(cell):
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def code_cell(nb, fragment):
    """The one code cell whose source contains ``fragment``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and fragment in c.source]
    assert len(cells) == 1, f"expected one code cell containing {fragment!r}, found {len(cells)}"
    return cells[0]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel spec is installed (pip install ipykernel)")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # One extra cell, in memory only: which interpreter ran the kernel.
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    workdir = tmp_path_factory.mktemp("notebook")
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisInterpreter())
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:  # names the cell and its traceback
        pytest.fail(f"{os.path.relpath(NOTEBOOK)} raised in a cell:\n{error}")
    return nb


def test_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    with_outputs = [i for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not with_outputs, (f"cells {with_outputs} of {os.path.relpath(NOTEBOOK)} hold outputs; clear them "
                              "before committing (jupyter nbconvert --clear-output --inplace)")


def test_runs_in_this_interpreter(executed):
    ran_by = stream_text(executed.cells[-1]).strip()
    assert ran_by == sys.executable, f"the kernel ran {ran_by!r}, not the Python running the tests, {sys.executable!r}"


def test_every_code_cell_ran_without_error(executed):
    for i, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"cell {i} did not run"
        errors = [out for out in cell.outputs if out.output_type == "error"]
        assert not errors, f"cell {i} raised {errors[0].ename}: {errors[0].evalue}"


def test_autograd_and_gradcheck(executed):
    text = stream_text(code_cell(executed, "by_hand"))
    grad = re.search(r"^autograd's dL/dw +\[(.*)\]$", text, re.M)
    assert grad and [float(v) for v in grad.group(1).split()] == [-5.5, -11.0, -16.5], text
    assert "True" in stream_text(code_cell(executed, "gradcheck(lambda"))
    assert "gradcheck caught it" in stream_text(code_cell(executed, "class Square(Function)"))
    dot = stream_text(code_cell(executed, "viz.graph("))
    assert dot.startswith("digraph autograd {") and 'label="w\\n(3,)\\nrequires grad"' in dot, dot


def test_conv_transpose_is_the_transposed_matrix(executed):
    # The cell asserts conv_transpose2d(y) == C^T @ y; reaching its prints means the assert passed.
    conv = stream_text(code_cell(executed, "F.conv_matrix("))
    assert "C, 4 outputs x 16 inputs" in conv and "conv2d: (1, 1, 4, 4) -> (1, 1, 2, 2)" in conv, conv
    transpose = stream_text(code_cell(executed, "F.conv_transpose2d("))
    assert "conv_transpose2d: (1, 1, 2, 2) -> (1, 1, 4, 4)" in transpose, transpose
    sides = [float(v) for v in re.findall(r"^<.*> += (\S+)$", transpose, re.M)]
    assert len(sides) == 2 and sides[0] == pytest.approx(sides[1], rel=1e-5), transpose


def test_training_loss_falls_and_miou_reaches_the_floor(executed):
    log = stream_text(code_cell(executed, "optimizer.step()"))
    first_step = float(re.search(r"^step 1: loss (\S+)$", log, re.M).group(1))
    epochs = [float(v) for v in re.findall(r"^epoch \d+: train loss (\S+)", log, re.M)]
    assert len(epochs) >= 2, log
    assert epochs[-1] < epochs[0] < first_step, log
    report = stream_text(code_cell(executed, "confusion.pixel_accuracy()"))
    miou = float(re.search(r"^mIoU (\S+)$", report, re.M).group(1))
    assert miou > MIOU_FLOOR, f"held-out mIoU {miou} is below {MIOU_FLOOR}:\n{log}\n{report}"


@pytest.mark.parametrize("call", ["viz.plot_predictions(", "viz.plot_curves("])
def test_figures_show_inline_as_png(executed, call):
    results = [out for out in code_cell(executed, call).outputs if out.output_type == "execute_result"]
    assert results and "image/png" in results[-1].data, f"the cell calling {call} showed no PNG: {results}"
    png = results[-1].data["image/png"]  # base64 text
    assert png.startswith("iVBORw0KGgo"), "image/png output is not a PNG"  # b'\x89PNG\r\n\x1a\n', in base64
