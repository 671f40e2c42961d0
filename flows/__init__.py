"""Prefect flows of retrain-guard, its command line and the example data generator."""
