# service api of fleet chain: rendered by dockyard; edit fleet.yaml, not this file.
ARG BASE_IMAGE=registry.lab.internal:5000/chain/family-ml:current
FROM ${BASE_IMAGE}
WORKDIR /app
COPY --chown=10001:10001 . /app
USER 10001:10001
HEALTHCHECK --interval=2s --timeout=5s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=5)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["-m", "api"]
