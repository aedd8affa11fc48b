"""`python -m testbed.cli`: the same as `testbed` (the tests and the bastion run it so)."""
import sys

from testbed.cli import main

sys.exit(main())
