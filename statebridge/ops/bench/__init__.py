"""`statebridge bench`: the guide's performance test, side by side with another server.

A load generator that is not the bottleneck (wrk when it is installed, an asyncio client
otherwise) runs each endpoint and the stateful mix against statebridge and, alternately,
against a baseline such as Phase 1, then prints req/s, latency percentiles, errors and the
ratio, and writes JSON and a chart.
"""
