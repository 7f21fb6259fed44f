"""The application: the command line, the daemon, and ``runtime``, the one place where
providers, clocks, stores, probers and metrics are assembled."""
