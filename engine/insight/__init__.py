"""Insights: what a finished run's student learned, and from whom (distill-engine analyze; docs/INSIGHTS.md)."""
