"""Encoded images to pixels: bytes in, (H, W, C) uint8 out; nothing here knows batches.

* :mod:`~gpuprep.decode.sniff`: what the bytes are (format; a JPEG's frame, size,
  components, EXIF orientation, whether it is complete), read from their markers;
* :mod:`~gpuprep.decode.host`: one image on the host (TorchCodec's libjpeg-turbo for JPEGs,
  Pillow for the rest), converted as ``ImageFolder`` converts;
* :mod:`~gpuprep.decode.device`: a batch of JPEGs in one nvJPEG call on CUDA, stream-safe,
  its outputs checked against their headers;
* :mod:`~gpuprep.decode.orient`: EXIF orientation, the same on every path.

This package imports only :mod:`gpuprep.compat`-level code (torch, NumPy, and TorchCodec,
torchvision or Pillow where they are installed); :mod:`gpuprep.data` packs encoded samples
into batches with it.
"""

from .device import DecoderFallbackWarning, decode_jpegs, device_decoder
from .host import MODES, check_mode, decode_host
from .orient import upright
from .sniff import Header, probe

__all__ = [
    "MODES",
    "DecoderFallbackWarning",
    "Header",
    "check_mode",
    "decode_host",
    "decode_jpegs",
    "device_decoder",
    "probe",
    "upright",
]
