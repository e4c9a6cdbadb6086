"""The HTTP service: ``create_app(settings)``."""

from genai_factory.service.app import create_app

__all__ = ["create_app"]
