"""`python -m xdplab ...` is the `xdplab` command."""
import sys

from xdplab.cli import main

sys.exit(main())
