#!/usr/bin/env bash
# From a fresh machine to the example fleet answering a search:
# engine (installed when missing) -> dockyard in .venv -> `dockyard up` -> ingest -> search.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/dockyard ] || make venv >/dev/null
scripts/install-engine.sh
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
.venv/bin/dockyard up
url="http://127.0.0.1:${GATEWAY_PORT}"
curl -fsS -X POST "$url/ingest" -H 'content-type: application/json' \
  -d '{"texts": ["The cat sleeps on the warm windowsill.", "Postgres keeps the user accounts.",
                 "The RTX 3060 ran out of GPU memory.", "A kitten naps in the afternoon sun."]}'
echo
echo "\$ curl '$url/search?q=where+is+the+sleepy+cat&k=2'"
curl -fsS "$url/search?q=where+is+the+sleepy+cat&k=2"
echo
