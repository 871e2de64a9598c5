"""The warehouse: one writer applies batches to a working database and publishes checked copies.

``Warehouse`` owns the files and the write lock; ``apply`` merges batches; ``read`` serves the
latest published version to any number of readers.
"""

from propsync.store.warehouse import Warehouse

__all__ = ["Warehouse"]
