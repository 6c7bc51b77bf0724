"""The canvas: a QGraphicsScene that mirrors the document, its items, view and interactions."""
