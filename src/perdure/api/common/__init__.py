"""``temporalio.api.common``'s place: see ``perdure.api.common.v1``."""

__all__: list[str] = []
