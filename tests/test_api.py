"""The public surface, names and signatures: a name that disappears, or a parameter that
changes its name, kind or default, is a breaking change and fails here."""

import inspect

import gpuprep
import gpuprep.transfer
from gpuprep import functional as F

# name -> its signature without annotations (a class: its constructor)
PUBLIC = {
    "IMAGENET_MEAN": None,
    "IMAGENET_STD": None,
    "functional": None,
    "CPUCollate": (
        "(preprocess=None, *, image_key=0, mode='RGB', apply_exif_orientation=False, "
        "numerics='uint8', targets=None)"
    ),
    "CenterCrop": "(size)",
    "DataLoader": (
        "(dataset, batch_size=1, *, device=None, preprocess=None, num_workers=0, image_key=0, "
        "prefetch=2, mode='RGB', apply_exif_orientation=False, cpu_numerics='uint8', "
        "targets=None, **kwargs)"
    ),
    "DeviceLoader": (
        "(loader, *, device=None, preprocess=None, image_key=0, prefetch=2, targets=None)"
    ),
    "EncodedImage": "(data, path=None)",
    "GPUCollate": (
        "(device=None, *, preprocess=None, image_key=0, mode='RGB', apply_exif_orientation=False, "
        "targets=None)"
    ),
    "GeometryOp": "()",
    "GeometryParams": "(boxes, resized, offsets, flip, size, sizes=None)",
    "Pad": "(multiple=1, size=None, fill=0.0, mask_fill=0, mask=False)",
    "PaddedBatch": "(tensors, image_sizes, mask=None)",
    "PageableMemoryWarning": None,  # a UserWarning
    "Preprocess": (
        "(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), *, dtype=torch.float32, "
        "channels_last=False, layout='NHWC', augment=None, geometry=None, eval_geometry=None, "
        "backend='auto', numerics='float', pad=None, degenerate_boxes='keep')"
    ),
    "RaggedBatch": "(data, shapes, *, image_ndim=3, host_shapes=None)",
    "RandomHorizontalFlip": "(p=0.5, *, generator=None)",
    "RandomResizedCrop": (
        "(size, scale=(0.08, 1.0), ratio=(0.75, 1.3333333333333333), interpolation='bilinear', "
        "antialias=True, *, generator=None)"
    ),
    "RandomShortestSize": (
        "(min_size, max_size=None, interpolation='bilinear', antialias=True, *, generator=None)"
    ),
    "Resize": "(size, interpolation='bilinear', max_size=None, antialias=True)",
    "ResizeKeepRatio": "(size, longest=0.0, interpolation='bilinear', antialias=True)",
    "ScaleJitter": (
        "(target_size, scale_range=(0.1, 2.0), interpolation='bilinear', antialias=True, *, "
        "generator=None)"
    ),
    "collate": (
        "(samples, *, image_key=0, mode='RGB', apply_exif_orientation=False, targets=None)"
    ),
    "collate_ragged": (
        "(samples, *, image_key=0, mode='RGB', apply_exif_orientation=False, targets=None)"
    ),
    "read_file": "(path)",
    "resolve_device": "(device=None)",
}

FUNCTIONAL = {
    "affine": "(mean, std, max_val, device=None)",
    "crop_resize_normalize": (
        "(x, boxes, size, *, resized=None, offsets=None, flip=None, mean, std, "
        "dtype=torch.float32, channels_last=False, layout='NHWC', antialias=True, "
        "interpolation='bilinear', backend='auto')"
    ),
    "denormalize": "(y, mean, std, *, dtype=torch.uint8, layout='NHWC')",
    "denormalize_with": "(y, mean, std, *, dtype=torch.uint8, layout='NHWC')",
    "normalize": (
        "(x, mean, std, *, layout='NHWC', dtype=torch.float32, channels_last=False, out=None, "
        "backend='auto')"
    ),
    "normalize_with": (
        "(xv, scale, bias, *, dtype=torch.float32, channels_last=False, out=None, backend='auto')"
    ),
    "to_nchw": "(x, layout='NHWC')",
    "transform_boxes": "(boxes, params, format=None, *, image_sizes=None)",
    "transform_keypoints": "(points, params, *, image_sizes=None)",
    "transform_masks": "(masks, params, *, canvas=None, fill=0, backend='auto')",
}
# The presets: the classmethods of Preprocess and the functions they call.
PRESETS = {
    "Preprocess.from_torchvision": "(weights, training=None, **kwargs)",
    "Preprocess.from_timm": "(model_or_config, training=None, **kwargs)",
    "from_torchvision": "(weights, training=None, *, generator=None)",
    "from_timm": (
        "(model_or_config, training=None, *, scale=(0.08, 1.0), "
        "ratio=(0.75, 1.3333333333333333), hflip=0.5, generator=None)"
    ),
}
# Documented and reached as attributes of gpuprep.functional, not listed in its __all__.
FUNCTIONAL_CHECKS = (
    "check_batch",
    "check_channels",
    "check_output_dtype",
    "check_stats",
    "max_value",
    "output_shape",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYOUTS",
    "OUTPUT_DTYPES",
    "PIXEL_DTYPES",
)


def bare_signature(obj) -> str:
    """The signature as names, kinds and defaults (annotations differ between Pythons)."""
    target = obj.__init__ if inspect.isclass(obj) and "__init__" in vars(obj) else obj
    sig = inspect.signature(target)
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    if inspect.isclass(obj) and params and params[0].name == "self":
        params = params[1:]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def test_public_names_and_signatures():
    assert set(gpuprep.__all__) == set(PUBLIC)
    for name, expected in PUBLIC.items():
        obj = getattr(gpuprep, name)
        if expected is not None:
            assert bare_signature(obj) == expected, name
    forward = "(self, x, params=None, targets=None, kinds=None)"
    assert bare_signature(gpuprep.Preprocess.forward) == forward


def test_preset_signatures():
    from gpuprep.nn import presets

    for name, expected in PRESETS.items():
        owner, _, attr = name.rpartition(".")
        obj = getattr(gpuprep.Preprocess if owner else presets, attr)
        assert bare_signature(obj) == expected, name


def test_functional_lists_the_ops_and_keeps_the_checks():
    assert set(F.__all__) == set(FUNCTIONAL)
    for name, expected in FUNCTIONAL.items():
        assert bare_signature(getattr(F, name)) == expected, name
    for name in FUNCTIONAL_CHECKS:
        assert getattr(F, name) is not None and name not in F.__all__
    assert F.IMAGENET_MEAN == gpuprep.IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert F.IMAGENET_STD == gpuprep.IMAGENET_STD == (0.229, 0.224, 0.225)


def test_documented_module_paths_keep_working():
    assert gpuprep.transfer.resolve_device is gpuprep.resolve_device
    assert gpuprep.transfer.PageableMemoryWarning is gpuprep.PageableMemoryWarning
    assert gpuprep.transfer.GPUCollate is gpuprep.GPUCollate
    assert issubclass(gpuprep.PageableMemoryWarning, UserWarning)
    for op in ("Resize", "ResizeKeepRatio", "CenterCrop", "RandomResizedCrop"):
        assert issubclass(getattr(gpuprep, op), gpuprep.GeometryOp)
    assert issubclass(gpuprep.RandomHorizontalFlip, gpuprep.GeometryOp)
