"""``genai-factory models | train | jobs`` and ``eval run | qa``: the MLOps command groups.

Each group's commands live beside the code they drive (``registry_cli``, ``train_cli``,
``jobs_cli``, ``eval_cli``); this module only gathers them for ``genai_factory.cli``.
"""

from __future__ import annotations

from genai_factory.mlops.eval_cli import eval_qa, eval_run
from genai_factory.mlops.jobs_cli import jobs_app
from genai_factory.mlops.registry_cli import models_app
from genai_factory.mlops.train_cli import train_app

__all__ = ["eval_qa", "eval_run", "jobs_app", "models_app", "train_app"]
