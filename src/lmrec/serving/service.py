"""`lmrec-serve`: a trained run behind HTTP (FastAPI + uvicorn, the `serve` extra).

Every request is validated before it reaches the model: the body's shape by pydantic (unknown fields, wrong types,
k out of range, oversized histories), ids and model capabilities by the `Recommender` (`RequestError`). Whatever
is wrong comes back as a 4xx with `{"error": "<one line>"}`; an unexpected failure is a 500 with a fixed message and
is logged here, never a traceback in the response.

The model answers on the event loop's worker threads; scoring is read-only, and the one stateful path (loading
and checking the encoder for a text query) runs under a lock.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from lmrec.errors import ConfigError, RequestError
from lmrec.serving.page import PAGE
from lmrec.serving.recommender import MAX_HISTORY, MAX_K, Recommender

log = logging.getLogger(__name__)

ItemId = int | str


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(Strict):
    user: ItemId | None = Field(None, description="a user of the run's data")
    users: list[ItemId] | None = Field(None, min_length=1, max_length=MAX_K, description="several users at once")
    history: list[ItemId] | None = Field(None, min_length=1, max_length=MAX_HISTORY, description="item ids")
    text: str | None = Field(None, min_length=1, max_length=10_000, description="a text describing the user")
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    candidates: list[ItemId] | None = Field(None, min_length=1, max_length=100_000)


class SimilarRequest(Strict):
    item: ItemId | None = None
    text: str | None = Field(None, min_length=1, max_length=10_000)
    k: int = Field(10, ge=1, le=MAX_K)


class RecommendedItem(BaseModel):
    rank: int
    item_id: ItemId
    score: float
    title: str


class ItemsAnswer(BaseModel):
    items: list[RecommendedItem] = Field(description="best first")


class UserAnswer(ItemsAnswer):
    user: ItemId


class BatchAnswer(BaseModel):
    results: list[UserAnswer] = Field(description="one per requested user, in the request's order")


class ErrorAnswer(BaseModel):
    error: str = Field(description="what is wrong with the request, in one line")


#: Documented in the OpenAPI schema only: the answers are built by lmrec and sent as they are, since validating a
#: response the server itself just built would cost every request time and check nothing new.
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorAnswer} for code in (400, 404, 422)}


class ExplainRequest(Strict):
    item: ItemId
    user: ItemId | None = None
    history: list[ItemId] | None = Field(None, min_length=1, max_length=MAX_HISTORY)


def create_app(rec: Recommender) -> Any:
    """The FastAPI application serving `rec`."""
    text_lock = threading.Lock()

    async def in_thread(method: Any, **options: Any) -> Any:
        """A text request in a worker thread, one at a time (the encoder is loaded and checked on first use)."""

        def locked() -> Any:
            with text_lock:
                return method(**options)

        return await run_in_threadpool(locked)

    rec.prepare()  # every item's vector now, not on the first request

    app = FastAPI(
        title="lmrec",
        description="Recommendations, neighbours and explanations of one trained lmrec run.",
        version="1",
    )

    @app.exception_handler(RequestError)
    async def request_error(_: Request, err: RequestError) -> JSONResponse:
        status = 404 if "is not an item" in str(err) or "is not a user" in str(err) else 400
        return JSONResponse({"error": str(err)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_line(err.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, err: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"error": f"internal error ({type(err).__name__}); see the server log"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", **rec.describe()})

    @app.get("/items/{item_id}", responses=ERRORS)
    async def item(item_id: str) -> JSONResponse:
        return JSONResponse(rec.item(item_id))

    # Scoring a request takes well under a millisecond, so it runs on the event loop (no thread hand-off per
    # request); a text, which runs the encoder, goes to a worker thread instead (`in_thread`).
    @app.post("/recommend", responses={200: {"model": ItemsAnswer | BatchAnswer}, **ERRORS})
    async def recommend(body: RecommendRequest) -> JSONResponse:
        if body.users is not None:
            if any(v is not None for v in (body.user, body.history, body.text, body.candidates)):
                raise RequestError("users=[...] is answered alone: no user, history, text or candidates with it")
            results = rec.recommend_many(body.users, k=body.k, exclude_seen=body.exclude_seen)
            answer = [{"user": u, "items": as_rows(r)} for u, r in zip(body.users, results, strict=True)]
            return JSONResponse({"results": answer})
        options = {"k": body.k, "exclude_seen": body.exclude_seen, "candidates": body.candidates}
        if body.text is not None:
            found = await in_thread(rec.recommend, user=body.user, history=body.history, text=body.text, **options)
        else:
            found = rec.recommend(user=body.user, history=body.history, **options)
        return JSONResponse({"items": as_rows(found)})

    @app.post("/similar", responses={200: {"model": ItemsAnswer}, **ERRORS})
    async def similar(body: SimilarRequest) -> JSONResponse:
        if body.text is not None:
            found = await in_thread(rec.similar, item=body.item, text=body.text, k=body.k)
        else:
            found = rec.similar(item=body.item, k=body.k)
        return JSONResponse({"items": as_rows(found)})

    @app.post("/explain", responses=ERRORS)
    async def explain(body: ExplainRequest) -> JSONResponse:
        """Each history item's contribution to the item's score (docs/serving.md: exact, leave-one-out or none)."""
        return JSONResponse(rec.explain(item=body.item, user=body.user, history=body.history))

    return app


def as_rows(found: list) -> list[dict[str, Any]]:
    return [r.as_dict() for r in found]


def validation_line(errors: list[dict[str, Any]]) -> str:
    """pydantic's first complaint as one line: where in the request, and what is wrong."""
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid value"))
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', message)})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'body'}: {message}{more}"


#: How `lmrec-serve workers=N` tells each worker process which run to load (uvicorn starts workers from an import
#: string, so the run cannot be handed over as an object).
RUN_VARIABLE = "LMREC_SERVE_RUN"


def app_from_environment() -> Any:
    """The app of a worker process: loads the run named in LMREC_SERVE_RUN (a JSON of `load`'s arguments)."""
    import json
    import os

    from lmrec.serving.recommender import load

    torch.set_num_threads(1)  # as in `serve`
    return create_app(load(**json.loads(os.environ[RUN_VARIABLE])))


def serve(
    rec: Recommender,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    workers: int = 1,
    run: dict[str, Any] | None = None,
) -> None:
    """Answer requests until stopped (Ctrl-C). `workers` > 1 runs that many processes, each with its own copy of the
    model (`run`: `load`'s arguments, for them to load it); the requests are spread over them."""
    import uvicorn

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r}; expected a whole number >= 1")
    # One torch thread per process: scoring one request is too small to split over cores, and threads that
    # spin-wait for work would take the cores the other requests (and worker processes) need.
    torch.set_num_threads(1)
    options = {"host": host, "port": port, "log_level": log_level, "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(rec), **options)
        return
    import json
    import os

    os.environ[RUN_VARIABLE] = json.dumps(run or {"run": str(rec.loaded.folder)})
    uvicorn.run("lmrec.serving.service:app_from_environment", factory=True, workers=workers, **options)
