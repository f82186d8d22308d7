"""SQL views and Python that turn stored results into indicators."""
