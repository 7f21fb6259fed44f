"""Allow ``python -m steadyscale``."""

from steadyscale.cli import main

raise SystemExit(main())
