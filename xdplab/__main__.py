"""`python -m xdplab ...` is the `xdplab` command."""
import sys

from .cli import main

sys.exit(main())
