"""Language models: the ``ChatModel`` interface, backends, resilience wrappers, tokens and cost."""

from genai_factory.llm.base import ChatModel
from genai_factory.llm.breaker import BreakerState, CircuitBreakerModel
from genai_factory.llm.fallback import FallbackModel
from genai_factory.llm.registry import build_chat_model, get_model
from genai_factory.llm.retry import RetryingModel
from genai_factory.llm.tokens import cost_usd, estimate_prompt_tokens, estimate_tokens

__all__ = [
    "BreakerState",
    "ChatModel",
    "CircuitBreakerModel",
    "FallbackModel",
    "RetryingModel",
    "build_chat_model",
    "cost_usd",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "get_model",
]
