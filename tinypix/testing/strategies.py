"""Hypothesis strategies for property-based tests of ops: shapes, tensors, conv geometries.

    from hypothesis import given
    from tinypix.testing import strategies as tst

    @given(tst.tensors(shape=tst.shapes(max_dims=3)))
    def test_double_negation(x):
        assert (-(-x)).tolist() == x.tolist()
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..creation import tensor

if TYPE_CHECKING:
    from ..tensor import Tensor
    from ..typing import DTypeLike, ShapeLike


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1,
           max_side: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, including 0-d ``()`` and size-1 dims by default."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 4, min_side: int = 1,
                         max_side: int = 5) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """A tuple of ``num_shapes`` shapes that broadcast together under NumPy's rules."""
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             min_side=min_side, max_side=max_side).map(lambda s: s.input_shapes)


def arrays(shape: ShapeLike | st.SearchStrategy[tuple[int, ...]], dtype: DTypeLike = np.float64,
           min_value: float = -3.0, max_value: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    """NumPy arrays of bounded, finite floats (``shape`` a tuple or a strategy of tuples)."""
    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False,
                         width=64 if np.dtype(dtype) == np.float64 else 32)
    return hnp.arrays(dtype, shape, elements=elements)


def tensors(shape: ShapeLike | st.SearchStrategy[tuple[int, ...]] = shapes(), dtype: DTypeLike = np.float64,
            min_value: float = -3.0, max_value: float = 3.0,
            requires_grad: bool = True) -> st.SearchStrategy[Tensor]:
    """tinypix tensors of bounded, finite values (float64 by default, for gradchecks)."""
    return arrays(shape, dtype, min_value, max_value).map(
        lambda a: tensor(a, dtype=dtype, requires_grad=requires_grad))


@st.composite
def conv_geometries(draw: st.DrawFn, max_batch: int = 2, max_channels: int = 4, max_size: int = 9,
                    max_kernel: int = 4, max_stride: int = 3, max_dilation: int = 2, max_groups: int = 2,
                    transpose: bool = False) -> dict[str, Any]:
    """A dict describing a 2-D convolution whose output has at least one pixel.

    Keys: N, C, H, W, F (output channels), kernel_size, stride, padding, dilation (pairs),
    groups, and output_padding (a pair, nonzero only when ``transpose``; it stays below
    stride or dilation, as PyTorch requires).
    """
    groups = draw(st.integers(1, max_groups))
    C = groups * draw(st.integers(1, max(1, max_channels // groups)))
    F = groups * draw(st.integers(1, max(1, max_channels // groups)))
    geometry = {"N": draw(st.integers(1, max_batch)), "C": C, "F": F, "groups": groups}
    pairs = {k: [] for k in ("kernel_size", "stride", "padding", "dilation", "output_padding")}
    for axis in "HW":
        k = draw(st.integers(1, max_kernel))
        s = draw(st.integers(1, max_stride))
        d = draw(st.integers(1, max_dilation))
        p = draw(st.integers(0, (d * (k - 1) + 1) // 2))
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the padded input must hold one dilated kernel
        geometry[axis] = draw(st.integers(smallest, max(smallest, max_size)))
        op = draw(st.integers(0, max(s, d) - 1)) if transpose else 0
        for key, v in zip(pairs, (k, s, p, d, op)):
            pairs[key].append(v)
    geometry.update({k: tuple(v) for k, v in pairs.items()})
    return geometry
