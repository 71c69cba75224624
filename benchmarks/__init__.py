"""Speed and memory benchmarks of rap-hf, and the baselines they are measured against."""
