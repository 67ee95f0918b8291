"""Training jobs: YAML specs, data checks, fitting, tracking and registration."""
