"""Imported last by the workers' fork server (see pool.ProcessPool): moves
everything imported so far out of the garbage collector's reach, so that a
worker's collections never write to those objects and the pages stay shared
with the fork server instead of being copied into each worker."""

import gc

gc.freeze()
