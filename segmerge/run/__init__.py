"""One campaign run: plan, pressure, experiments, push and record."""
