"""STAND-IN for opentelemetry-instrumentation-fastapi (not in the package index used): a no-op.
The real one wraps every request in a server span and records http.server metrics; leaving that
out makes the Python FlockServe faster per request, never slower."""


class FastAPIInstrumentor:
    @staticmethod
    def instrument_app(app, **_):
        return None

    def instrument(self, **_):
        return None

    def uninstrument(self, **_):
        return None
