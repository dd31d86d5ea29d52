"""The benchmark runner: what a run covers, how each cell is started, loaded and measured."""
