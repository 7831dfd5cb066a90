from losslint.cli import main

raise SystemExit(main())
