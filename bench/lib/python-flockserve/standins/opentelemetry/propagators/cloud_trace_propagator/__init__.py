"""STAND-IN for opentelemetry-propagator-gcp's CloudTraceFormatPropagator (not in the package index
used): reads and writes no X-Cloud-Trace-Context header. Only spans would use it, and the FastAPI
instrumentation stand-in makes none."""

from opentelemetry.propagators.textmap import TextMapPropagator


class CloudTraceFormatPropagator(TextMapPropagator):
    def extract(self, carrier, context=None, getter=None):
        from opentelemetry.context import get_current

        return context if context is not None else get_current()

    def inject(self, carrier, context=None, setter=None):
        return None

    @property
    def fields(self):
        return {"x-cloud-trace-context"}
