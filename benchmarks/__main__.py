"""``python -m benchmarks``: runs the benchmark suite (:mod:`benchmarks.suite`)."""

import sys

from benchmarks.suite import main

sys.exit(main())
