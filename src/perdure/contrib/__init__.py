"""Optional integrations with other libraries, one module each, imported on their own.

- :mod:`perdure.contrib.pydantic`: ``pydantic_data_converter``, for code ported from Temporal
  (perdure's default converter already handles pydantic models).
- :mod:`perdure.contrib.opentelemetry`: ``TracingInterceptor``, OpenTelemetry spans with
  Temporal's names (``pip install perdure[opentelemetry]``).
"""

__all__: list[str] = []
