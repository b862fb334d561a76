"""Prometheus metrics: request counts and latency histograms per route, the model version, reloads.

A pure ASGI middleware (no per-request task switching) labels each request with its route
template (``/users/{user_id}/recommendations``), so ids do not explode the label space.
Each app has its own registry, so several apps can live in one process (tests).
"""
from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from lmrec.extras import needs

with needs("serve", "lmrec serve"):
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lmrec_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("lmrec_request_seconds", "HTTP request latency", ["method", "route"],
                                 buckets=BUCKETS, registry=self.registry)
        self.version = Gauge("lmrec_model_info", "The served model (value 1)", ["version", "model_id"],
                             registry=self.registry)
        self.events = Counter("lmrec_events_stored", "Events acknowledged as durable", registry=self.registry)
        # reloads: tests read these to know that no child process ran, or no full collection
        self.reloads = Counter("lmrec_reloads", "Reloads asked, by outcome: unchanged (nothing to load), loaded, "
                               "refused, busy (another reload was running)", ["outcome"], registry=self.registry)
        self.checks = Counter("lmrec_version_checks", "Versions checked in a child process", registry=self.registry)
        self.shared_encoders = Counter("lmrec_encoders_shared", "Loaded versions that took over the served "
                                       "version's encoder", registry=self.registry)
        self.release_collections = Counter("lmrec_release_collections", "Full garbage collections run because a "
                                           "replaced model outlived its last request (reference cycles)",
                                           registry=self.registry)

    def set_model(self, version: str, model_id: str) -> None:
        self.version.clear()
        self.version.labels(version=version, model_id=model_id).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status[0])).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - start)
