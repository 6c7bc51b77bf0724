"""Insights: what a trained student learned, and from which teachers (distill-engine analyze)."""
