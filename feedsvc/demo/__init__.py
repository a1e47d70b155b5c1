"""Sample data for `feedsvc demo`, written by the benchmarks' generator
(bench/article_generator.py)."""
