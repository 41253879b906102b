"""Data: pairs, collections, bitext and models."""
