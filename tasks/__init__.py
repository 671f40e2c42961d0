"""One module per stage: plain functions first, thin Prefect task wrappers at the bottom."""
