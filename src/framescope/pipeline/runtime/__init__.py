"""The runtime: the stage tree compiled into units, the per-item protocol, threads, queues,
results, the input loop, CPU accounting and the read-out of one snapshot."""
