"""A differential fuzzer: random autograd programs run with torch and with tracegrad (eager,
compiled, compiled cache hit), compared value by value. See docs/fuzzing.md."""
