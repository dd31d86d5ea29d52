"""Build tools the Makefile runs: docs code includes, notebook execution."""
