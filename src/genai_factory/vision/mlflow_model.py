"""Log the network as an MLflow PyTorch model, with a signature and an input example.

The signature is inferred from a real batch: input ``float32 (-1, 1, S, S)`` on the model's
normalised scale, output one logit per image (before temperature and threshold, which live in the
registered bundle's ``model.json``). Requirements are given explicitly (torch's pinned version), so
MLflow does not spend seconds inferring them from the environment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genai_factory.mlops.tracking import import_mlflow
from genai_factory.vision.pixels import U8
from genai_factory.vision.preprocessing import normalise


def log_network(predictor: Any, examples: U8) -> str:
    """Log ``predictor.network`` as the active run's model ``model``; returns its model URI."""
    mlflow = import_mlflow()
    from mlflow.models import infer_signature

    inputs = normalise(examples)
    with torch.inference_mode():
        outputs = predictor.network(torch.from_numpy(inputs)).numpy().astype(np.float32)
    info = mlflow.pytorch.log_model(
        predictor.network,
        name="model",
        signature=infer_signature(inputs, outputs),
        input_example=inputs,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
    )
    return str(info.model_uri)
