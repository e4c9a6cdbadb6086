"""The networks a recipe may name (an allowlist), built by :func:`build_model`.

``small_cnn``: three stages of two 3×3 convolutions with batch norm and ReLU (widths ``w``, ``2w``,
``4w``), max-pooling between stages, global average pooling, dropout and one logit. About 0.29 M
parameters at ``w=32`` (1.1 MB as float32): 28×28 images do not need a ResNet's depth, and the
published ResNet-18/50 figures on PneumoniaMNIST are below what a small, well-regularised network
reaches. :meth:`SmallCNN.embed` returns the pooled penultimate features, the drift check's embedding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genai_factory.exceptions import ConfigurationError


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """A binary classifier of one-channel images; ``forward`` returns one logit per image."""

    def __init__(self, width: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(1, width),
            nn.MaxPool2d(2),
            _block(width, 2 * width),
            nn.MaxPool2d(2),
            _block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, 1))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate features, shape ``(N, 4 * width)``."""
        out: torch.Tensor = self.features(images)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.embed(images)).squeeze(1)
        return out


def build_model(architecture: str, **options: Any) -> SmallCNN:
    """The network named ``architecture`` (only registered names)."""
    if architecture == "small_cnn":
        return SmallCNN(
            width=int(options.get("width", 32)), dropout=float(options.get("dropout", 0.2))
        )
    raise ConfigurationError(f"unknown architecture {architecture!r}; known: small_cnn")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
