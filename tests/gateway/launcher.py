"""One GenAI Factory service process for the replica tests.

``python launcher.py FD`` serves ``create_app(load_settings())`` on the listening socket ``FD``
(inherited from the test, so no port can be taken in between); settings come from ``GENAI_*``.
"""

from __future__ import annotations

import sys

import uvicorn

from genai_factory.config import load_settings
from genai_factory.service.app import create_app


def main() -> None:
    app = create_app(load_settings())
    uvicorn.run(app, fd=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
