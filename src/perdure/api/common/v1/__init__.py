"""``Payload`` where Temporal's SDK keeps it (``temporalio.api.common.v1``), so a ported
converter or codec keeps its import: ``from perdure.api.common.v1 import Payload``. It is the
same class as ``perdure.converter.Payload``."""

from perdure._common.payload import Payload

__all__ = ["Payload"]
