"""STAND-IN for opentelemetry-exporter-otlp-proto-grpc's OTLPMetricExporter (not in the package
index used): accepts the same arguments and drops what it is given. The Python FlockServe hands it
metrics every 120 s (its PeriodicExportingMetricReader), never on a request."""


class OTLPMetricExporter:
    def __init__(self, endpoint=None, **_):
        self.endpoint = endpoint

    def export(self, metrics_data, timeout_millis=10_000, **_):
        return None

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, timeout_millis=30_000, **_):
        return None
