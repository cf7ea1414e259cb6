"""Around the pipeline, not in it: PR report and comment, results guard, parallel study,
README generator, benchmark helpers. May import everything; nothing in the pipeline imports it."""
