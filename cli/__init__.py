"""The `gprune` command line. `library` holds the commands that need only `gprune/` and the test
bed (eval, fixtures, train-tiny, benchmarks); `sweeps` those of the sweep service (sweep, presets)."""
