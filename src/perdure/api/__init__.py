"""Where Temporal's SDK keeps its protobuf messages (``temporalio.api``): the few that ported
converter and codec code imports from there, under the same module paths."""

__all__: list[str] = []
