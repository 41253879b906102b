"""Orchestration: what a run will do, running it, the grid, the sweep, external runs, fusion of stored runs."""
