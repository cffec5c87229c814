"""The process a job runs in: distributed ranks, experiment loggers, progress reporting, resource accounting."""
