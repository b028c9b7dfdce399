"""A worker instrumented with the reference OpenTelemetry Python SDK, written
the way the cross-service platform page shows: it extracts the W3C context
from the JSON body's `trace_context` and starts its `inference` span there.

usage: worker.py OTLP_TRACES_URL PROJECT PORT
prints "ready" once listening; serves until killed.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

otlp_url, project, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
provider = TracerProvider(
    resource=Resource.create({"service.name": "python-worker", "openinference.project.name": project})
)
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_url)))
tracer = provider.get_tracer("interop")
propagator = TraceContextTextMapPropagator()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        # The body carrier only: headers are deliberately ignored here.
        ctx = propagator.extract(body.get("trace_context", {}))
        with tracer.start_as_current_span("inference", context=ctx) as span:
            span.set_attribute("prompt.length", len(body["prompt"]))
            trace_id = format(span.get_span_context().trace_id, "032x")
        answer = json.dumps({"image": f"<python image of {body['prompt']}>", "trace_id": trace_id}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
