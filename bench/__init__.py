"""bench: a benchmark harness for cross-lingual information retrieval on low-resource languages."""

__version__ = "0.1.0"
