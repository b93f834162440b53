"""A study: jobs, executors (local, Ray), preparing a run, and the public Python API."""
