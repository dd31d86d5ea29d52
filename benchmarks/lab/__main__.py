"""`.venv/bin/python -m benchmarks.lab` (what `make run` runs): start the lab until Ctrl-C."""

import os
import sys

from benchmarks import servers
from benchmarks.lab.launcher import main

os.chdir(servers.ROOT)  # logs/ lands in the repository, wherever this was started from
sys.exit(main())
