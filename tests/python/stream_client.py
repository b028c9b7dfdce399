"""A caller of a streaming endpoint, instrumented with the reference
OpenTelemetry Python SDK: one span, its traceparent in the request headers,
the answer read with httpx and the httpx-sse event parser, event by event.

usage: stream_client.py OTLP_TRACES_URL PROJECT TARGET_URL BODY_JSON [HANG_UP_AFTER]
prints one JSON object: the trace and span ids, the HTTP status, the content
type, and each event (its name, data, and when it arrived in Unix ns). With
HANG_UP_AFTER it closes the connection after that many events.
"""

import json
import sys
import time

import httpx
from httpx_sse import connect_sse
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

otlp_url, project, target, body = sys.argv[1:5]
hang_up_after = int(sys.argv[5]) if len(sys.argv) > 5 else None
provider = TracerProvider(
    resource=Resource.create({"service.name": "python-client", "openinference.project.name": project})
)
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_url)))
tracer = provider.get_tracer("interop")

events = []
with tracer.start_as_current_span("python-client") as span:
    headers = {"content-type": "application/json"}
    TraceContextTextMapPropagator().inject(headers)
    with httpx.Client(timeout=30) as client:
        with connect_sse(client, "POST", target, content=body, headers=headers) as source:
            status = source.response.status_code
            content_type = source.response.headers.get("content-type", "")
            for event in source.iter_sse():
                events.append({"event": event.event, "data": event.data, "received_ns": time.time_ns()})
                if hang_up_after is not None and len(events) >= hang_up_after:
                    break
    context = span.get_span_context()

provider.shutdown()
print(
    json.dumps(
        {
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
            "status": status,
            "content_type": content_type,
            "events": events,
        }
    ),
    flush=True,
)
