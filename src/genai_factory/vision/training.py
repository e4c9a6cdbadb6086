"""Fit a network to a labelled image set (PyTorch on CPU), with early stopping on validation AUC.

The recipe (``genai_factory.vision.recipe``): batch augmentation, class weighting (each class
weighs half of the loss, whatever its share), label smoothing, AdamW with a one-cycle learning
rate, and early stopping on validation AUC (``patience`` epochs) that keeps the best epoch's
weights. Seeded: the same data, recipe and thread count give the same model. ``max_seconds``
bounds the wall time (training stops after the epoch that crosses it).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from genai_factory.exceptions import InvalidRequestError
from genai_factory.vision.augment import augment
from genai_factory.vision.data import ImageSet
from genai_factory.vision.evaluation import evaluate
from genai_factory.vision.model import SmallCNN, build_model
from genai_factory.vision.preprocessing import normalise
from genai_factory.vision.recipe import Recipe

#: Called after each epoch with (epoch, epochs, metrics of that epoch).
EpochHook = Callable[[int, int, dict[str, float]], None]


@dataclass
class Fitted:
    """The trained network (best epoch's weights) and how training went."""

    network: SmallCNN
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def _class_weights(labels: NDArray[np.int64]) -> torch.Tensor:
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    weights = len(labels) / (2 * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def validation_logits(network: SmallCNN, inputs: torch.Tensor, flip: bool) -> NDArray[np.float64]:
    network.eval()
    with torch.inference_mode():
        out = network(inputs)
        if flip:
            out = (out + network(torch.flip(inputs, dims=(3,)))) / 2
    result: NDArray[np.float64] = out.double().numpy()
    return result


def _epoch(
    network: SmallCNN,
    optimiser: torch.optim.Optimizer,
    schedule: Any,
    data: tuple[torch.Tensor, torch.Tensor],
    recipe: Recipe,
    weights: torch.Tensor | None,
    generator: torch.Generator,
) -> float:
    inputs, targets = data
    network.train()
    order = torch.randperm(len(targets), generator=generator)
    total, seen = 0.0, 0
    for start in range(0, len(order), recipe.batch_size):
        index = order[start : start + recipe.batch_size]
        if len(index) < 2:
            continue  # batch norm needs two samples
        batch = augment(inputs[index], recipe.augmentation, generator)
        batch = batch.contiguous(memory_format=torch.channels_last)
        y = targets[index]
        smooth = y * (1 - recipe.label_smoothing) + recipe.label_smoothing / 2
        loss_each = F.binary_cross_entropy_with_logits(network(batch), smooth, reduction="none")
        if weights is not None:
            loss_each = loss_each * weights[y.long()]
        loss = loss_each.mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        schedule.step()
        total += float(loss.detach()) * len(index)
        seen += len(index)
    return total / max(seen, 1)


def fit(
    train: ImageSet, val: ImageSet, recipe: Recipe, on_epoch: EpochHook | None = None
) -> Fitted:
    """Train a network of ``recipe.architecture`` on ``train``, early-stopped on ``val`` AUC."""
    if len(train) < 2 or len(set(train.labels.tolist())) < 2:
        raise InvalidRequestError("the training set needs images of both classes")
    if len(set(val.labels.tolist())) < 2:
        raise InvalidRequestError("the validation set needs images of both classes (for AUC)")
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    network = build_model(recipe.architecture, width=recipe.width, dropout=recipe.dropout)
    network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    inputs = torch.from_numpy(normalise(train.images))
    targets = torch.from_numpy(train.labels.astype(np.float32))
    val_inputs = torch.from_numpy(normalise(val.images))
    weights = _class_weights(train.labels) if recipe.class_weighting else None
    optimiser = torch.optim.AdamW(
        network.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay
    )
    steps = max(1, -(-len(train) // recipe.batch_size)) * recipe.epochs
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=recipe.learning_rate, total_steps=steps + recipe.epochs
    )
    started = time.perf_counter()
    best_auc, best_epoch, best_state = -1.0, 0, copy.deepcopy(network.state_dict())
    history: list[dict[str, float]] = []
    epoch = 0
    for epoch in range(1, recipe.epochs + 1):
        loss = _epoch(network, optimiser, schedule, (inputs, targets), recipe, weights, generator)
        logits = validation_logits(network, val_inputs, recipe.test_time_flip)
        scored = evaluate(1 / (1 + np.exp(-logits)), val.labels, 0.5)
        row = {
            "epoch": float(epoch),
            "loss": loss,
            "val_auc": scored.auc,
            "val_accuracy": scored.accuracy,
        }
        history.append(row)
        if scored.auc > best_auc:
            best_auc, best_epoch, best_state = (
                scored.auc,
                epoch,
                copy.deepcopy(network.state_dict()),
            )
        if on_epoch is not None:
            on_epoch(epoch, recipe.epochs, row)
        if (
            epoch - best_epoch >= recipe.patience
            or time.perf_counter() - started > recipe.max_seconds
        ):
            break
    network.load_state_dict(best_state)
    network.eval()
    return Fitted(network, best_epoch, epoch, time.perf_counter() - started, history)
