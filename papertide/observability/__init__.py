"""What an operator watches: health probes, Prometheus metrics, structured logs with request ids.

* :mod:`.logs`: ``log_format`` text or JSON, the request id in every record, secrets redacted;
* :mod:`.health`: ``/healthz`` (the process serves) and ``/readyz`` (database and migrations);
* :mod:`.metrics`: ``/metrics`` (requests, latencies, jobs, outbox, ingest, scheduler), in
  prometheus_client's multiprocess mode under ``papertide serve --workers N``;
* :mod:`.middleware`: the pure-ASGI middleware that ties them to each request.

See docs/observability.md.
"""
