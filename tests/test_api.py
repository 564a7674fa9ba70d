"""The public surface: a name that disappears is a breaking change."""

import gpuprep

PUBLIC = {
    "collate",
    "Preprocess",
    "GPUCollate",
    "DeviceLoader",
    "DataLoader",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "functional",
    "collate_ragged",
    "RaggedBatch",
    "Resize",
    "CenterCrop",
    "RandomResizedCrop",
    "RandomHorizontalFlip",
    "GeometryParams",
}


def test_public_names():
    assert set(gpuprep.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(gpuprep, name) is not None


def test_functional_surface():
    for name in (
        "normalize",
        "normalize_with",
        "crop_resize_normalize",
        "denormalize",
        "affine",
        "check_batch",
        "check_channels",
        "check_stats",
        "max_value",
        "to_nchw",
    ):
        assert callable(getattr(gpuprep.functional, name))
    assert gpuprep.IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert gpuprep.IMAGENET_STD == (0.229, 0.224, 0.225)
