"""The fleet's front door: ingest sentences, search them by meaning, report fleet health."""

from __future__ import annotations

import json
import os
import uuid

import httpx
import redis
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

store = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
EMBEDDER = os.environ["EMBEDDER_URL"]
app = FastAPI(title="gateway")


class IngestRequest(BaseModel):
    texts: list[str]


def _embed(texts: list[str]) -> list[list[float]]:
    try:
        reply = httpx.post(f"{EMBEDDER}/embed", json={"texts": texts}, timeout=60)
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        raise HTTPException(502, f"embedder unavailable: {exc}") from exc
    vectors: list[list[float]] = reply.json()["vectors"]
    return vectors


@app.post("/ingest")
def ingest(request: IngestRequest) -> dict[str, int]:
    vectors = _embed(request.texts)
    with store.pipeline() as pipe:
        for text, vector in zip(request.texts, vectors, strict=True):
            pipe.hset("docs", str(uuid.uuid4()), json.dumps({"text": text, "vector": vector}))
        pipe.execute()
    return {"ingested": len(request.texts), "total": int(store.hlen("docs"))}


@app.get("/search")
def search(q: str, k: int = 3) -> dict[str, object]:
    (query,) = _embed([q])
    scored = []
    for raw in store.hvals("docs"):
        doc = json.loads(raw)
        # Vectors are normalised, so the dot product is the cosine similarity.
        score = sum(a * b for a, b in zip(query, doc["vector"], strict=True))
        scored.append({"text": doc["text"], "score": round(score, 4)})
    scored.sort(key=lambda d: d["score"], reverse=True)
    return {"query": q, "results": scored[:k]}


@app.get("/health")
def health() -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        checks["store"] = "ok" if store.ping() else "down"
    except redis.RedisError as exc:
        checks["store"] = f"down: {exc}"
    try:
        httpx.get(f"{EMBEDDER}/health", timeout=5).raise_for_status()
        checks["embedder"] = "ok"
    except httpx.HTTPError as exc:
        checks["embedder"] = f"down: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks},
                        status_code=200 if ok else 503)
