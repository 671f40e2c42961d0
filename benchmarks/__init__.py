"""On-demand speed and memory measurements; run each as `python -m benchmarks.<name>`."""
