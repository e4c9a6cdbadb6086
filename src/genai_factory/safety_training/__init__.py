"""Training and measuring the guards: data, fitting, evaluation and the ``eval guard|pii`` commands.

This is the offline side of :mod:`genai_factory.safety`. The serving guards load artefacts and
score texts; everything that builds those artefacts (the datasets' readers, the synthetic
sentences and hard negatives, fitting the classifiers) or measures them lives here, so a serving
process never imports it (``tests/test_import_graph.py`` keeps it so). It is a package
of its own rather than part of :mod:`genai_factory.mlops` because the MLOps core is model-agnostic
orchestration (tracking, registry, gates): ``train guard`` (:mod:`genai_factory.mlops.training.guards`)
runs this code, as ``scripts/train_guards.py`` and the benchmarks do.
"""
