"""The ground floor: shared mechanics with no domain (store, locks, stops, devices, training loop)."""
