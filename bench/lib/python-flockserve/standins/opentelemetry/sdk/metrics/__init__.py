"""STAND-IN (see opentelemetry/sdk/__init__.py): the API's no-op MeterProvider, with the SDK's arguments."""

from opentelemetry.metrics import NoOpMeterProvider


class MeterProvider(NoOpMeterProvider):
    def __init__(self, metric_readers=(), resource=None, **_):
        super().__init__()
        self.metric_readers = list(metric_readers)

    def shutdown(self, timeout_millis=30_000):
        return None

    def force_flush(self, timeout_millis=10_000):
        return True
