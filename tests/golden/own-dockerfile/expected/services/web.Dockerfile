# service web of fleet custom: rendered by dockyard; edit fleet.yaml, not this file.
ARG BASE_IMAGE=custom/family-py:current
FROM ${BASE_IMAGE}
WORKDIR /app
COPY --chown=10001:10001 . /app
USER 10001:10001
HEALTHCHECK --interval=5s --timeout=5s --retries=3 \
  CMD ["python3", "-c", "print('ok')"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["flask", "run", "--host", "0.0.0.0"]
