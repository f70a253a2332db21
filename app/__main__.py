"""`python -m app` reaches the same CLI as the `tenantry` console script."""

from app.cli import main

raise SystemExit(main())
