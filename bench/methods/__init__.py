"""Methods: retrieval, translation and distillation, as plain functions of plain arguments."""
