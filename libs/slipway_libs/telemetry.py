"""OpenTelemetry tracing, with the context carried through the outbox and Kafka headers.

A use case's span context is captured into the outbox row when the event is written; the relay
continues that trace with a PRODUCER span and puts its ``traceparent`` in the Kafka headers; the
consumer starts a CONSUMER span under it. So one trace runs from the HTTP request to the effect
in another service. Exporting is OTLP over HTTP when ``SLIPWAY_OTLP_ENDPOINT`` is set; tests pass
an in-memory exporter.

When no exporter is installed (``exporting()`` is false) the relay and the inbox open no span per
event, they only carry the W3C context on: the outbox row's carrier goes into the Kafka headers as
it is, and the consumer's handlers run in the context of the record (``continued``), so the events
they write go on in the trace of the request that started it all.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

TRACER_NAME = "slipway"

# providers built by configure_tracing with somewhere to send spans to
_EXPORTING: weakref.WeakSet[TracerProvider] = weakref.WeakSet()


def configure_tracing(
    service_name: str, *, otlp_endpoint: str | None = None, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install the global tracer provider of this process (call once, from the composition root)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
    if exporter is not None or otlp_endpoint:
        _EXPORTING.add(provider)
    trace.set_tracer_provider(provider)
    return provider


def exporting() -> bool:
    """Whether the process's tracer provider sends its spans anywhere. Checked against the
    provider in force, not the last configure_tracing call: OpenTelemetry keeps the first one
    installed (a test session's in-memory exporter beats a service's own, spanless, provider)."""
    return trace.get_tracer_provider() in _EXPORTING


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``, maybe ``tracestate``)."""
    carrier: dict[str, str] = {}
    if otel_context.get_current():  # nothing attached (no span, no caller's trace): no headers
        propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(carrier))


@contextlib.contextmanager
def continued(carrier: Mapping[str, str]) -> Iterator[None]:
    """Run the block in the context ``carrier`` holds, without a span of its own: what the block
    writes to an outbox (or logs) still belongs to that trace."""
    token = otel_context.attach(context_from(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


def kafka_headers(carrier: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in carrier.items()]


def carrier_from_kafka(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: v.decode() for k, v in (headers or ()) if v is not None}


_IDS = RandomIdGenerator()


def unrecorded_context(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context of a request when no span is exported: the caller's trace (``traceparent``)
    continued, or a new one, under a span that records nothing. Logs, outgoing requests and
    outbox rows carry its ids as they would a recorded server span's; building that span (its
    attributes, its metrics, its route lookup) cost the gateway about a seventh of its CPU per
    request for nobody."""
    extracted = propagate.extract(carrier)
    parent = trace.get_current_span(extracted).get_span_context()
    if parent.is_valid:
        trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
    else:
        trace_id, flags, state = _IDS.generate_trace_id(), TraceFlags(TraceFlags.SAMPLED), None
    span = NonRecordingSpan(SpanContext(trace_id, _IDS.generate_span_id(), False, flags, state))
    return trace.set_span_in_context(span, extracted)


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the current span, or None outside any trace."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
