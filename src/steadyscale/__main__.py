"""Allow ``python -m steadyscale``."""

from steadyscale.app.cli import main

raise SystemExit(main())
