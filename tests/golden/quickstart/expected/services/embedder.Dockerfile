# service embedder of fleet quickstart: rendered by dockyard; edit fleet.yaml, not this file.
ARG BASE_IMAGE=quickstart/family-embed:current
FROM ${BASE_IMAGE}
WORKDIR /app
COPY --chown=10001:10001 . /app
USER 10001:10001
HEALTHCHECK --interval=5s --timeout=5s --start-period=1m --retries=12 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/health', timeout=5)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python3", "-m", "uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8001"]
