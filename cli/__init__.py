"""The `gprune` command line: `library` (eval, fixtures, train-tiny, benchmarks, methods: `gprune/` and the
test bed only), `sweeps` (sweep, presets), `dashboards` (report, ui), `regress` (regress, schedule)."""
