"""What a running statebridge tells its operators: metrics, structured logs, request ids,
and the liveness/readiness probes.

Everything here is per process and lock-free: a worker is one thread running one event loop,
so a plain integer increment is atomic enough, and costs nanoseconds on the request path.
"""
