"""`buffers.blank`: the engine's large arrays, whatever memory they come from."""

from __future__ import annotations

import gc
import mmap

import numpy as np

from aurora.features.buffers import LARGE, blank


def test_a_large_blank_array_is_its_own_writable_float64_c_order_memory():
    shape = (3, LARGE // 8)  # three times the threshold
    a, b = blank(shape), blank(shape)
    assert a.shape == shape and a.dtype == np.float64 and a.flags.c_contiguous
    assert a.flags.writeable and not np.shares_memory(a, b)
    if hasattr(mmap, "MAP_PRIVATE"):  # POSIX: the array's memory is its own mapping
        assert isinstance(a.base.base.obj, mmap.mmap)
    a[:] = 1.5
    b[:] = -2.0
    assert a.sum() == 1.5 * a.size and b.min() == b.max() == -2.0
    view = a[1:, ::2]  # a view keeps the memory alive after the array is gone
    del a
    gc.collect()
    assert view.min() == view.max() == 1.5


def test_a_small_or_empty_blank_array_is_an_ordinary_one():
    for shape in ((0,), (2, 0), (10, 10)):
        small = blank(shape)
        assert small.shape == shape and small.dtype == np.float64
        small[...] = 7.0
        assert (small == 7.0).all()
