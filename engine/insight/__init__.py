"""Insights: what a finished run's student learned, and from whom (docs/INSIGHTS.md)."""
