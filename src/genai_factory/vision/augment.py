"""Random augmentation of a training batch, on the tensor (no image library, one call per batch).

Geometry: rotation, scaling, translation and a horizontal mirror, applied together as one affine
resampling (``affine_grid`` + ``grid_sample``, border padding). Intensity: per-image contrast and
brightness jitter around the image's mean, then Gaussian noise. Contrast and brightness jitter
also make the model less sensitive to acquisition differences (exposure, detector), the kind of
shift the drift check watches for.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genai_factory.vision.recipe import Augmentation


def augment(images: torch.Tensor, spec: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """A randomly transformed copy of ``images`` (``N×1×H×W``, normalised)."""
    n = images.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(spec.rotation_deg))
    scale = 1 + uniform(spec.scale)
    flip = torch.ones(n)
    if spec.horizontal_flip:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    theta[:, 0, 2], theta[:, 1, 2] = uniform(2 * spec.translate), uniform(2 * spec.translate)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    contrast = (1 + uniform(spec.contrast)).view(n, 1, 1, 1)
    brightness = uniform(spec.brightness * 4).view(n, 1, 1, 1)  # ×4: the normalised scale
    out = (out - mean) * contrast + mean + brightness
    if spec.noise > 0:
        out = out + torch.randn(out.shape, generator=generator) * (spec.noise * 4)
    return out
