"""One module per stage: plain measure and judge functions, then the Prefect task.

A task is usually its function made a task (`task(name=...)(function)`), so its signature is
the function's. Every check is declared once, in registry.py; leakage checks live in the
leakage/ package. See the README's "Layout" and "Adding a check".
"""
