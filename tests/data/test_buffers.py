"""BufferPool hands memory out again only when nobody holds it, and never while a copy
still reads it. (Where torch's private functions it rests on are missing: tests/test_compat.py.)"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import torch

from gpuprep.compat import pooling_works
from gpuprep.data.buffers import BufferPool


def base_ptr(t):
    return t.untyped_storage().data_ptr()


def test_reuse_only_after_release():
    pool = BufferPool(capacity=2)
    a = pool.empty((4, 5), torch.float32)
    ptr = base_ptr(a)
    b = pool.empty((4, 5), torch.float32)
    assert base_ptr(b) != ptr
    del a
    c = pool.empty((4, 5), torch.float32)
    assert base_ptr(c) == ptr


def test_views_and_numpy_arrays_keep_memory_alive():
    pool = BufferPool(capacity=1)
    a = pool.empty((8,), torch.float32)
    view = a[2:4]
    arr = a.numpy()
    ptr = base_ptr(a)
    del a
    assert base_ptr(pool.empty((8,), torch.float32)) != ptr  # the view holds it
    del view
    assert base_ptr(pool.empty((8,), torch.float32)) != ptr  # the NumPy array holds it
    del arr


def test_capacity_bounds_what_is_kept():
    pool = BufferPool(capacity=2)
    held = [pool.empty((3,), torch.uint8) for _ in range(5)]
    assert len(pool) == 2
    assert len({base_ptr(t) for t in held}) == 5


def test_shapes_dtypes_and_channels_last():
    pool = BufferPool(capacity=2)
    t = pool.empty((2, 3, 4, 5), torch.float16, memory_format=torch.channels_last)
    assert t.dtype == torch.float16 and t.shape == (2, 3, 4, 5)
    assert t.is_contiguous(memory_format=torch.channels_last)
    t.fill_(1)
    assert float(t.sum()) == 120.0
    del t
    u = pool.empty((120,), torch.float16)  # same bytes, another shape: reused
    assert u.shape == (120,)


def test_pending_copy_is_waited_for():
    class Event:
        def __init__(self):
            self.done = False
            self.waited = False

        def query(self):
            return self.done

        def synchronize(self):
            self.waited = True
            self.done = True

    pool = BufferPool(capacity=1)
    a = pool.empty((4,), torch.uint8)
    ev = Event()
    pool.record(a, ev)
    ptr = base_ptr(a)
    del a
    b = pool.empty((4,), torch.uint8)  # full pool: reuse, but only after the copy ended
    assert ev.waited and base_ptr(b) == ptr
    np.testing.assert_array_equal(b.numpy().shape, (4,))


def test_reuse_of_an_older_buffer_among_several():
    pool = BufferPool(capacity=3)
    a = pool.empty((16,), torch.uint8)
    b = pool.empty((16,), torch.uint8)
    ptr_a = base_ptr(a)
    del a  # the older one is free, the newer one held
    c = pool.empty((16,), torch.uint8)
    assert base_ptr(c) == ptr_a and base_ptr(b) != ptr_a


# ------------------------------------------------- the private torch functions, checked


def test_reference_count_check_passes_here():
    assert pooling_works()


def test_copies_of_a_pool_start_empty():

    pool = BufferPool(capacity=3, pin_memory=False)
    held = pool.empty((4,), torch.uint8)
    for other in (copy.deepcopy(pool), pickle.loads(pickle.dumps(pool))):
        assert len(other) == 0 and other.capacity == 3
        assert base_ptr(other.empty((4,), torch.uint8)) != base_ptr(held)
