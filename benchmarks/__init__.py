"""Load tests and the benchmark runner: they import the lab's packages, never copy them."""
