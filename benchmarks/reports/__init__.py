"""The run reports: report.md, its tables and plots, drawn from a run folder's CSV and meta.json."""
