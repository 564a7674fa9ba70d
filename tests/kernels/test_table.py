"""The geometry kernel's per-sample table: its columns defined once (kernels.table.COLUMNS),
written by name, read by name in the kernel, for ragged and dense batches; and the cache of
its device copies, whose stream ordering is checked with recording fakes (conftest.py's
``fake_cuda``) where there is no GPU."""

from __future__ import annotations

import inspect
import re
import weakref

import numpy as np
import pytest
import torch
from helpers import MEAN3, SLEEP, STD3, FakeStream

import gpuprep
from gpuprep.geometry import GeometryParams
from gpuprep.kernels import table as T
from gpuprep.kernels.passes import PLAN_COLUMNS
from gpuprep.kernels.table import COL, COLUMNS, NCOL, TableCache, param_table


def column(table, *names):
    """The named columns of a table, as lists per sample."""
    return table[:, [COL[n] for n in names]].tolist()


def params_for_two():
    return GeometryParams(
        boxes=torch.tensor([[1, 2, 3, 4], [0, 0, 40, 33]]),
        resized=torch.tensor([[6, 8], [3, 4]]),
        offsets=torch.tensor([[1, 0], [0, 0]]),
        flip=torch.tensor([True, False]),
        size=(3, 4),
    )


def test_param_table_for_ragged_and_dense_batches():
    sizes = [(7, 12), (40, 33)]
    arrays = [np.zeros((h, w, 3), np.uint8) for h, w in sizes]
    batch = gpuprep.collate_ragged(arrays)
    params = params_for_two()
    table, src = param_table(batch, params)
    assert src is batch.data
    assert table.dtype == np.int64 and table.shape == (2, NCOL)
    assert column(table, "offset") == [[0], [7 * 12 * 3]]  # where each image starts
    assert column(table, "row_stride") == [[12 * 3], [33 * 3]]  # a row, in elements
    box = ("box_top", "box_left", "box_height", "box_width")
    assert column(table, *box) == params.boxes.tolist()
    assert column(table, "resized_height", "resized_width") == params.resized.tolist()
    assert column(table, "window_top", "window_left") == params.offsets.tolist()
    assert column(table, "flip") == [[1], [0]]
    taps = ("taps_height", "taps_width")
    # box 3x4 enlarged to 6x8: the triangle spans 2 source pixels (one more for rounding)
    assert column(table, *taps)[0] == [3, 3]
    assert column(table, "pixel_stride", "channel_stride") == [[3, 1]] * 2
    # 40 rows to 3: the triangle spans 2 * 40 / 3 = 26.7 source rows; 33 columns to 4: 16.5.
    assert column(table, *taps)[1] == [28, 18]
    # the cubic spans twice that; without antialias 2 or 4 taps
    bicubic = param_table(batch, params, interpolation="bicubic")[0]
    assert column(bicubic, *taps) == [[5, 5], [55, 34]]
    assert column(param_table(batch, params, antialias=False)[0], *taps) == [[2, 2]] * 2
    plain = param_table(batch, params, interpolation="bicubic", antialias=False)[0]
    assert column(plain, *taps) == [[4, 4]] * 2

    dense = torch.zeros((2, 40, 33, 3), dtype=torch.uint8).permute(0, 3, 1, 2)  # NCHW view
    table, src = param_table(dense, params, "NCHW")
    assert src is dense
    assert column(table, "offset") == [[0], [40 * 33 * 3]]
    assert column(table, "row_stride") == [[33 * 3]] * 2
    assert column(table, "pixel_stride", "channel_stride") == [[3, 1]] * 2


def test_param_table_for_decoded_images_reads_each_where_it_lies():
    """Images decoded one tensor each ((C, H, W) from nvJPEG, (H, W, C) from the host): one
    row per image, its offset from the lowest address and its own strides, no repacking."""
    from gpuprep.data.image_list import ImageList

    planar = torch.zeros((3, 7, 12), dtype=torch.uint8)  # as nvJPEG returns it
    packed = torch.zeros((40, 33, 3), dtype=torch.uint8)
    images = ImageList([planar.permute(1, 2, 0), packed])
    table, src = param_table(images, params_for_two())
    base = min(planar.data_ptr(), packed.data_ptr())
    assert src.data_ptr() == base
    assert column(table, "offset") == [[planar.data_ptr() - base], [packed.data_ptr() - base]]
    assert column(table, "row_stride", "pixel_stride", "channel_stride") == [
        [12, 1, 7 * 12],
        [33 * 3, 3, 1],
    ]


def test_every_column_is_written_and_read_by_its_name():
    """param_table writes each column by name, and the kernel reads each one by a constant
    made from its name: renaming, adding or reordering a column cannot leave either behind."""
    assert NCOL == len(COLUMNS) == len(set(COLUMNS)) and COL == {
        n: i for i, n in enumerate(COLUMNS)
    }
    builder = inspect.getsource(T.param_table)
    body = builder[builder.index("    n = len(params)") :]  # after the signature
    written = set(re.findall(r'"([a-z_]+)"', body))
    # columns written as a block: _NAME = _block("first", "last"), the columns between
    module = inspect.getsource(T)
    for constant, first, last in re.findall(
        r'^(_[A-Z_]+) = _block\("(\w+)", "(\w+)"\)', module, re.M
    ):
        if constant in body:
            written |= set(COLUMNS[COL[first] : COL[last] + 1])
    assert written == set(COLUMNS), set(COLUMNS) ^ written
    for kernel in ("resample.py", "separable.py"):
        source = open(inspect.getsourcefile(T).replace("table.py", kernel)).read()
        for name in COLUMNS:
            if kernel == "separable.py" and name.startswith("output_"):
                continue  # padded batches take the direct kernel, which alone reads these
            constant = "_" + name.upper()
            assert f'{constant} = tl.constexpr(COL["{name}"])' in source, (kernel, name)
            assert f"row + {constant}" in source, (kernel, name)
        assert "n * _NCOL" in source and not re.search(r"row \+ \d", source), kernel
    source = open(inspect.getsourcefile(T).replace("table.py", "separable.py")).read()
    assert "_NCOL = tl.constexpr(PLAN_NCOL)" in source
    for name in PLAN_COLUMNS:  # the separable kernel's own columns, after the direct ones
        constant = "_" + name.upper()
        assert f'{constant} = tl.constexpr(PLAN_COL["{name}"])' in source, name
        assert f"row + {constant}" in source, name


# ------------------------------------------------------ the cache of device copies, on streams

CUDA = torch.device("cuda")


@pytest.fixture
def cuda_copies(fake_cuda, monkeypatch):
    """TableCache as on CUDA, on fake streams: the copy to the device, ``record_stream`` and
    whether the current stream is capturing are faked too, and log into fake_cuda's log.
    Returns (log, streams by name, read, capturing): ``read(cache, table, stream)`` gets
    the table with ``stream`` current and logs ("read", stream) when it has returned;
    ``capturing[0] = True`` makes the calls that follow as inside a CUDA graph capture."""
    log, side, current = fake_cuda
    streams = {"consumer": current[0], "side": side, "other": FakeStream("other", log)}
    capturing = [False]
    pinned: set[int] = set()
    empty, to = torch.empty, torch.Tensor.to

    def fake_empty(*args, pin_memory=False, **kwargs):
        t = empty(*args, **kwargs)
        if pin_memory:
            pinned.add(t.data_ptr())
        return t

    def fake_to(self, *args, **kwargs):
        device = args[0] if args else kwargs.get("device")
        if isinstance(device, torch.device) and device.type == "cuda":
            assert self.data_ptr() in pinned, "copied from pageable memory"
            assert kwargs.get("non_blocking"), "a copy that waits for the host"
            log.append(("copy", current[-1].name))
            return self.clone()
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch, "empty", fake_empty)
    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    monkeypatch.setattr(
        torch.Tensor, "record_stream", lambda self, s: log.append(("record_stream", s.name))
    )
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: capturing[0])

    def read(cache, table, stream, device=CUDA):
        current.append(streams[stream])
        try:
            out = cache.get(table, device)
        finally:
            current.pop()
        log.append(("read", stream))
        return out

    return log, streams, read, capturing


def tables(n, rows=2):
    """n tables of distinct contents."""
    return [np.full((rows, NCOL), k, np.int64) for k in range(n)]


def since(log, start):
    return log[start:]


def test_a_copy_is_waited_for_on_every_other_stream_that_reads_it(cuda_copies):
    """A DeviceLoader's side stream copies a table; the main stream then hits it: it waits on
    the copy's event before it reads the table, once, and is recorded for the allocator."""
    log, _, read, _ = cuda_copies
    cache = TableCache()
    table = tables(1)[0]
    dev = read(cache, table, "side")  # the miss
    assert [e[:2] for e in log] == [("copy", "side"), ("record", "side"), ("read", "side")]
    copied = log[1][2]  # the event recorded after the copy, on the copying stream

    n = len(log)
    assert read(cache, table, "side") is dev
    assert since(log, n) == [("read", "side")]  # the copying stream: ordered already

    n = len(log)
    assert read(cache, table, "consumer") is dev
    assert since(log, n) == [
        ("wait_event", "consumer", copied),  # before the table is handed out
        ("record_stream", "consumer"),  # an evicted table is not reused before it is read
        ("read", "consumer"),
    ]
    n = len(log)
    assert read(cache, table, "consumer") is dev
    assert since(log, n) == [("read", "consumer")]  # once per stream

    n = len(log)
    assert read(cache, table, "other") is dev
    assert since(log, n) == [
        ("wait_event", "other", copied),
        ("record_stream", "other"),
        ("read", "other"),
    ]
    assert not any(e[0] == "copy" for e in since(log, 1))


def test_tables_are_cached_by_content_and_device(cuda_copies):
    log, _, read, _ = cuda_copies
    cache = TableCache()
    table = tables(2)[1]

    def copies():
        return sum(1 for e in log if e[0] == "copy")

    dev = read(cache, table, "consumer")
    assert read(cache, table.copy(), "consumer") is dev  # equal contents, another array
    torch.testing.assert_close(dev, torch.from_numpy(table), rtol=0, atol=0)
    assert copies() == 1
    changed = table.copy()
    changed[1, COL["flip"]] = 0
    assert read(cache, changed, "consumer") is not dev
    assert read(cache, table.reshape(1, -1), "consumer") is not dev  # same bytes, other shape
    assert read(cache, table, "consumer", torch.device("cuda:1")) is not dev
    assert copies() == 4
    n = len(log)
    cpu = read(cache, table, "consumer", torch.device("cpu"))  # interpreted kernels
    assert read(cache, table, "consumer", torch.device("cpu")) is cpu
    assert since(log, n) == [("read", "consumer")] * 2  # no stream, event or copy


def test_the_least_recently_used_table_is_evicted(cuda_copies):
    log, _, read, _ = cuda_copies
    cache = TableCache(capacity=2)
    a, b, c = tables(3)
    first = weakref.ref(read(cache, a, "side"))
    read(cache, b, "side")
    read(cache, a, "consumer")  # a used last: b goes first
    read(cache, c, "side")
    n = len(log)
    read(cache, a, "side")
    read(cache, c, "side")
    assert not any(e[0] == "copy" for e in since(log, n))
    read(cache, b, "side")  # evicted: copied again; now a is the least recently used
    copied_again = [("copy", "side"), ("record", "side"), ("read", "side")]
    assert [e[:2] for e in since(log, n + 2)] == copied_again
    assert first() is None  # released to the allocator, recorded on the stream that read it
    assert ("record_stream", "consumer") in log


def test_a_capture_reads_the_warm_up_copy_without_waiting_and_keeps_it(cuda_copies):
    """Warm-up on a side stream, capture on another: the hit does not wait (a capturing
    stream may not wait on an event recorded outside its capture, and torch.cuda.graph
    synchronizes first) and the entry is never evicted, since every replay reads it. A table
    first copied inside the capture is copied into the graph: kept for its replays, handed to
    no one else, since its contents exist only once the graph replays."""
    log, _, read, capturing = cuda_copies
    cache = TableCache(capacity=1)
    warm, fresh, *others = tables(4)
    dev = read(cache, warm, "side")
    copied = log[1][2]

    capturing[0] = True
    n = len(log)
    assert read(cache, warm, "other") is dev
    assert since(log, n) == [("read", "other")]
    n = len(log)
    in_graph = weakref.ref(read(cache, fresh, "other"))
    assert since(log, n) == [("copy", "other"), ("read", "other")]  # no event in the capture
    capturing[0] = False

    for t in others:
        read(cache, t, "side")  # capacity 1: each evicts the one before
    assert in_graph() is not None  # kept for the graph's replays
    n = len(log)
    assert read(cache, warm, "consumer") is dev  # kept; out of the capture, waited for
    assert since(log, n)[0] == ("wait_event", "consumer", copied)
    n = len(log)
    assert read(cache, fresh, "consumer") is not in_graph()
    assert since(log, n)[0] == ("copy", "consumer")


@pytest.mark.cuda
def test_a_table_copied_on_a_busy_side_stream_is_ready_on_the_main_stream(monkeypatch):
    """The side stream copies the table behind a long sleep, as a DeviceLoader's busy side
    stream would; the main stream's call on the same sizes hits that copy and must wait for
    it on the device: launched at once, its kernel would read whatever the memory held."""
    from gpuprep import functional as F
    from gpuprep.kernels import backends

    x = torch.randint(0, 256, (4, 37, 29, 3), dtype=torch.uint8, device="cuda")
    boxes = torch.tensor([[0, 0, 37, 29], [3, 2, 30, 20], [5, 5, 20, 20], [1, 0, 36, 28]])
    kw = dict(mean=MEAN3, std=STD3, flip=torch.tensor([False, True, False, True]))
    ref = F.crop_resize_normalize(x, boxes, (16, 12), **kw, backend="torch")
    F.crop_resize_normalize(x, boxes, (16, 12), **kw, backend="triton")  # compiles the kernel
    monkeypatch.setattr(backends, "_tables", TableCache())  # so the next call copies
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(SLEEP)  # the table's copy queues behind this
        on_side = F.crop_resize_normalize(x, boxes, (16, 12), **kw, backend="triton")
    on_main = F.crop_resize_normalize(x, boxes, (16, 12), **kw, backend="triton")  # a hit
    assert len(backends._tables._entries) == 1
    torch.testing.assert_close(on_main, ref, rtol=0, atol=2e-5)
    torch.cuda.current_stream().wait_stream(side)
    torch.testing.assert_close(on_side, ref, rtol=0, atol=2e-5)
