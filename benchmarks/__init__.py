"""Load tests and measurements, in named parts: the runner, the reports, the lab, diagnostics.

They import the lab's packages, never copy them; README.md's "What is where" maps every file.
"""

from shared_model.venv_check import require

# Run outside .venv, a command says what to run instead of a bare ModuleNotFoundError.
require("httpx", "psutil", "locust", "matplotlib")
