"""STAND-IN (see opentelemetry/sdk/__init__.py): holds the exporter; collects and exports nothing."""


class PeriodicExportingMetricReader:
    def __init__(self, exporter, export_interval_millis=None, export_timeout_millis=None):
        self.exporter = exporter
        self.export_interval_millis = export_interval_millis
