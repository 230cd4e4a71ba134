"""Replicas of one stage: the executor interface (``base``) and its threads, processes and
Ray actors; the sequencer that keeps their results in input order."""
