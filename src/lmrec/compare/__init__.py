"""Comparing evaluations: is model B better than baseline A on the same users, by how much, and how sure are we.

`statistics` holds the paired tests and intervals on per-user metric values, `multiple` the correction across a
table's comparisons, `seeds` the tests over training seeds, `pareto` the cost/accuracy front. They work on plain
numpy arrays; reading run folders and writing reports sit on top of them.
"""
