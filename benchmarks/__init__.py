"""Load tests and measurements, in named parts: the runner, the reports, the lab, diagnostics.

They import the lab's packages, never copy them; README.md's "What is where" maps every file.
"""
