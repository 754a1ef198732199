"""Pydantic support, under the names Temporal's ``temporalio.contrib.pydantic`` uses.

perdure's default converter already handles pydantic v2 models: they are written as JSON
with ``model_dump(mode="json")`` and read back with ``model_validate`` when the parameter or
return type is a model. So ``pydantic_data_converter`` *is* the default converter; it exists
so code ported from Temporal keeps working unchanged::

    from perdure.contrib.pydantic import pydantic_data_converter

    client = await Client.connect("sqlite:///app.db", data_converter=pydantic_data_converter)
"""

from __future__ import annotations

try:
    import pydantic as _pydantic  # noqa: F401  (fail here, clearly, if it is missing)
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "perdure.contrib.pydantic needs pydantic v2: pip install 'perdure[pydantic]'. "
        "(Without it you need nothing from this module: the default converter is the same.)"
    ) from e

from perdure.converter import DataConverter, DefaultPayloadConverter

__all__ = ["PydanticPayloadConverter", "pydantic_data_converter"]


class PydanticPayloadConverter(DefaultPayloadConverter):
    """perdure's default payload converter under Temporal's name, which handles pydantic
    models along with dataclasses and the other types the default supports.

    Temporal's ``to_json_options`` argument is not supported; customise serialization on the
    model itself (``model_config``, field serializers) instead.
    """


pydantic_data_converter: DataConverter = DataConverter.default
"""The data converter for pydantic models: the default one, as perdure needs nothing more."""
