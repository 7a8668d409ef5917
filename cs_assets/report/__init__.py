"""The health report: one static HTML page per snapshot for a CS manager."""
