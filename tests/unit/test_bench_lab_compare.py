"""benchmarks/bench_lab.py --compare: the parts that need no lab (reading a profile's top functions,
the "before" config from git history)."""

from lab import repo_module

bench = repo_module("bench_lab", "benchmarks/bench_lab.py")

# `go tool pprof -top` of a collector profile (Go 1.26), header lines included.
TOP = """File: otelcol-contrib
Type: cpu
Duration: 16s, Total samples = 6.50s (40.62%)
Showing nodes accounting for 3.10s, 47.69% of 6.50s total
      flat  flat%   sum%        cum   cum%
     1.07s 16.46% 16.46%      1.36s 20.92%  compress/flate.(*compressor).findMatch
     0.45s  6.92% 23.38%      0.45s  6.92%  runtime.asyncPreempt
     0.42s  6.46% 29.85%      2.28s 35.08%  compress/flate.(*compressor).deflate
"""


def test_the_profiles_top_functions_are_read_with_their_flat_and_cumulative_shares():
    assert bench.pprof_top(TOP) == [
        {"flat_pct": 16.46, "cum_pct": 20.92, "function": "compress/flate.(*compressor).findMatch"},
        {"flat_pct": 6.92, "cum_pct": 6.92, "function": "runtime.asyncPreempt"},
        {"flat_pct": 6.46, "cum_pct": 35.08, "function": "compress/flate.(*compressor).deflate"}]


def test_the_before_config_is_the_collector_config_at_the_revision_given():
    # HEAD, not an old commit: a shallow clone has no history beyond it.
    from lab import REPO
    assert bench._config_at("HEAD") == (REPO / "otel-collector/config.yaml").read_text()
