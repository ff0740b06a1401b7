# service store of fleet quickstart: rendered by dockyard; edit fleet.yaml, not this file.
ARG BASE_IMAGE=quickstart/family-redis:current
FROM ${BASE_IMAGE}
USER 0:0
RUN mkdir -p /data \
    && chown 10001:10001 /data
WORKDIR /app
COPY --chown=10001:10001 . /app
USER 10001:10001
HEALTHCHECK --interval=5s --timeout=5s --retries=5 \
  CMD ["redis-cli", "ping"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["redis-server", "/app/redis.conf"]
