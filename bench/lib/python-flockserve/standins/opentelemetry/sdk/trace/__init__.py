"""STAND-IN (see opentelemetry/sdk/__init__.py): the API's no-op TracerProvider, with the SDK's add_span_processor."""

from opentelemetry.trace import NoOpTracerProvider


class TracerProvider(NoOpTracerProvider):
    def __init__(self, **_):
        super().__init__()
        self.span_processors = []

    def add_span_processor(self, span_processor):
        self.span_processors.append(span_processor)
