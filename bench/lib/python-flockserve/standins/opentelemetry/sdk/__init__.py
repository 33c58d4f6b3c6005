"""STAND-IN for the parts of opentelemetry-sdk the Python FlockServe imports (MeterProvider,
PeriodicExportingMetricReader, TracerProvider, BatchSpanProcessor). The real SDK is in the package
index used, but the package it requires, opentelemetry-semantic-conventions, is not, so it does not
import. These hand the API's no-op meters and tracers out. The Python FlockServe records its
meters only in periodic tasks (every 10 s and 30 s), never on a request, so this removes no work
from its data path."""
