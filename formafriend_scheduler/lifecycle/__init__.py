"""The run lifecycle shared by every job: the runner (lease lock and its
heartbeat, the job record, signals, the memory and duration watch), the
context a job runs in, and the pool of worker processes.

Below `jobs` in the import graph: jobs run inside a JobContext and hand
batches to the pool, while the runner drives a job through the `Job`
protocol without importing any; nothing here imports `jobs` or `cli`.
"""
