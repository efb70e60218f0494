import sys

from fieldwatch.cli import main

sys.exit(main())
