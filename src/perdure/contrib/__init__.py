"""Optional integrations with other libraries, one module each, imported on their own.

- :mod:`perdure.contrib.pydantic`: ``pydantic_data_converter``, for code ported from Temporal
  (perdure's default converter already handles pydantic models).
- :mod:`perdure.contrib.opentelemetry`: ``TracingInterceptor``, OpenTelemetry spans with
  Temporal's names (``pip install perdure[opentelemetry]``).
- :mod:`perdure.contrib.prometheus`: ``PrometheusMetrics``, Temporal's SDK metrics and the
  store's gauges on a ``prometheus_client`` registry (``pip install 'perdure[prometheus]'``).
"""

__all__: list[str] = []
