"""Results: scoring with ir-measures, statistics, stored runs, reports and the regression check."""
