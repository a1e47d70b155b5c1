"""Sample data for `feedsvc demo` and the benchmarks: see `feedsvc.demo.generate`."""
