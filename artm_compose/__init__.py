"""artm-compose: distributed BigARTM-style topic-model training on a Redis Cluster."""

__version__ = "0.1.0"
