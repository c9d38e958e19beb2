from sidehand.cli import main

raise SystemExit(main())
