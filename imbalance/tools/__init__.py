"""Around the pipeline, not in it: PR report and comment, results guard, parallel study,
README generator, warm start, profiling."""
