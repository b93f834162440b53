"""Training one member: the step, the loop, precision choice and the throughput benchmark."""
