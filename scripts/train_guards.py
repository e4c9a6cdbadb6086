"""Train the guard classifiers from the shared datasets into a versioned artefact directory.

    .venv/bin/python scripts/train_guards.py --datasets ../shared/datasets --out .genai/safety \
        --unseen tests/safety/data/unseen_styles.csv

Writes ``injection``, ``toxicity`` and ``pii_names`` (``.json`` manifest + ``.npz`` weights). The
service reads ``<data_dir>/safety`` first, then the artefacts shipped in the package, which were
produced by this script with ``--out src/genai_factory/safety/artefacts``. See docs/safety.md.
"""

from __future__ import annotations

from genai_factory.safety_training.training import main

if __name__ == "__main__":
    main()
