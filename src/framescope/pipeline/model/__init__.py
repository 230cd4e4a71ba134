"""The snapshot model: what every consumer of a pipeline's numbers reads.

Plain data at the bottom of the pipeline package: the snapshot, DepthAI's
node states and events, CPU splits, frame traces and the counters' names.
It imports no renderer, no runtime and no live tree.
"""
