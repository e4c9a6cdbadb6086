"""``/v1/documents``: upload, list and delete the documents of the serving index version.

``POST /v1/documents`` takes one multipart ``file`` (Markdown, text, reStructuredText, HTML or PDF)
and indexes it in the active version: 201 when indexed, 200 when the same content was already there
(``unchanged``, or ``duplicate`` of another document). Refusals: 413 over ``rag.max_upload_bytes``,
415 for an unsupported type, 422 for an empty, textless or unreadable file. The document becomes
visible only once all its chunks are written, so a failure leaves nothing half-written.

Documents have an owner: an upload records the key that made it (``metadata.owner``). With auth on,
only that key or an admin key may replace or delete it (403 otherwise); documents without an owner
(the knowledge directories, uploads made with auth off) are changed by admin keys only.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from genai_factory.assistant.assembly import Components
from genai_factory.exceptions import (
    DocumentTooLarge,
    NotFoundError,
    PermissionDenied,
    UnreadableDocument,
)
from genai_factory.gateway.context import current_request
from genai_factory.rag.catalog import DocumentRecord
from genai_factory.rag.loaders import load_bytes
from genai_factory.rag.parsers import file_type
from genai_factory.service.deps import ready_components

router = APIRouter(prefix="/v1/documents", tags=["documents"])

#: Room for the multipart envelope around the file in the request's Content-Length.
MULTIPART_SLACK = 64 * 1024
_READ_BLOCK = 1024 * 1024


class DocumentUploaded(BaseModel):
    status: Literal["indexed", "unchanged", "duplicate"]
    document: DocumentRecord
    duplicate_of: str | None = None
    version: str | None = None


class DocumentList(BaseModel):
    documents: list[DocumentRecord]
    count: int
    version: str | None = None


class DocumentDeleted(BaseModel):
    id: str
    deleted: bool = True
    chunks: int


def _too_large(limit: int) -> DocumentTooLarge:
    return DocumentTooLarge(f"the document is larger than the limit of {limit} bytes")


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while block := await upload.read(_READ_BLOCK):
        size += len(block)
        if size > limit:
            raise _too_large(limit)
        parts.append(block)
    return b"".join(parts)


def _caller() -> str | None:
    """The id of the request's key (``None`` with auth off)."""
    context = current_request()
    return context.key.id if context is not None and context.key is not None else None


def _check_owner(record: DocumentRecord | None, action: str) -> None:
    """403 unless the request's key may ``action`` the document (see the module docstring)."""
    context = current_request()
    key = context.key if context is not None else None
    if record is None or key is None or key.admin:
        return
    if record.metadata.get("owner") != key.id:
        raise PermissionDenied(
            f"this key may not {action} document {record.id}: another key owns it"
        )


@router.post("", status_code=201, response_model=DocumentUploaded)
async def upload_document(
    request: Request,
    file: Annotated[UploadFile, File(description="The document to index.")],
    parts: Annotated[Components, Depends(ready_components)],
) -> JSONResponse:
    """Index one uploaded document in the serving index version."""
    limit = parts.settings.rag.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise _too_large(limit)
    name = file.filename or ""
    file_type(name)  # 415 before reading the body
    data = await _read_limited(file, limit)
    if not data.strip():
        raise UnreadableDocument(f"{name} is empty")
    document = await asyncio.to_thread(load_bytes, name, data)
    index = await parts.index.ensure()
    _check_owner(await index.document(document.id), "replace")
    document.metadata["owner"] = _caller()
    report = await parts.index.ingest_documents([document])
    owner = report.duplicates.get(document.id)
    record = await index.document(owner or document.id)
    if record is None:  # pragma: no cover - the ingest above recorded it
        raise NotFoundError(f"document {document.id} was not indexed")
    status: Literal["indexed", "unchanged", "duplicate"] = (
        "indexed" if report.documents_indexed else "duplicate" if owner else "unchanged"
    )
    body = DocumentUploaded(
        status=status, document=record, duplicate_of=owner, version=parts.index.active_id()
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201 if status == "indexed" else 200
    )


@router.get("")
async def list_documents(parts: Annotated[Components, Depends(ready_components)]) -> DocumentList:
    """Every document of the serving index version."""
    documents = await parts.index.documents()
    return DocumentList(documents=documents, count=len(documents), version=parts.index.active_id())


@router.delete("/{document_id}")
async def delete_document(
    document_id: str, parts: Annotated[Components, Depends(ready_components)]
) -> DocumentDeleted:
    """Remove a document and all its chunks; 404 when the serving version does not hold it."""
    index = await parts.index.ensure()
    _check_owner(await index.document(document_id), "delete")
    chunks = await parts.index.delete([document_id])
    return DocumentDeleted(id=document_id, chunks=chunks)
