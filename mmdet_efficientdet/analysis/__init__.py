"""Cost analysis: measurement, complexity and budget search."""
