# service worker of fleet chain: rendered by dockyard; edit fleet.yaml, not this file.
ARG BASE_IMAGE=registry.lab.internal:5000/chain/family-serve:current
FROM ${BASE_IMAGE}
USER 0:0
RUN mkdir -p /models /var/cache/worker \
    && chown 10001:10001 /models /var/cache/worker
WORKDIR /app
COPY --chown=10001:10001 . /app
USER 10001:10001
HEALTHCHECK --interval=5s --timeout=5s --start-period=15s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7000/ready', timeout=5)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["/bin/sh", "-c", "python3 -m worker --queue jobs"]
