"""The debug recorder and its reducer: one feature, one cost budget.

Each node's ``EventRecorder`` appends packed records on the frame path; the
aggregator drains them into statistics, node readings and trace material.
"""
