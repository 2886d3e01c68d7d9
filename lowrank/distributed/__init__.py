"""Dask helpers shared by the domain modules (imported only when ``client=`` is used)."""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__, {"resolve_client": "_client", "active_client": "_client", "submit_value": "_lineage"}
)
