"""Every MongoDB query and write. The only package that imports pymongo."""

from formafriend_scheduler.store.client import Store, connect

__all__ = ["Store", "connect"]
