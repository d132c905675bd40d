import sys

from multiplan.cli import main

sys.exit(main())
