"""A caller instrumented with the reference OpenTelemetry Python SDK: one span,
its traceparent in the request headers, exported to an OTLP/HTTP endpoint.

usage: client.py OTLP_TRACES_URL PROJECT TARGET_URL
prints the trace id and the span id of its span, then the HTTP status.
"""

import json
import sys
import urllib.request

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

otlp_url, project, target = sys.argv[1:4]
provider = TracerProvider(
    resource=Resource.create({"service.name": "python-client", "openinference.project.name": project})
)
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_url)))
tracer = provider.get_tracer("interop")

with tracer.start_as_current_span("python-client") as span:
    headers = {"content-type": "application/json"}
    TraceContextTextMapPropagator().inject(headers)
    request = urllib.request.Request(
        target, data=json.dumps({"prompt": "red circle"}).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        status = response.status
    context = span.get_span_context()
    print(format(context.trace_id, "032x"), format(context.span_id, "016x"), status, flush=True)

provider.shutdown()
