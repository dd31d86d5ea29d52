"""`make run`'s lab: the launcher, the feature service it starts, and the tutorial snippets."""
