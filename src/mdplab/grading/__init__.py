"""Grading submissions: collecting, repairing, running and judging them."""
