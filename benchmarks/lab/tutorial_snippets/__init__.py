"""What NOT to copy: the two serving snippets most tutorials show, kept as reference rows.

The benchmark runs them beside the lab's apps so that students see what the lab's contract
costs (validation, warnings, error mapping) and what it buys. Neither validates anything:
a missing field, a string, a NaN or a reordered object all reach the model or crash the view.
"""
