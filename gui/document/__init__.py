"""The pipeline document: nodes and links, undo commands, conversion to and from a spec.

QtCore/QtGui only (signals and QUndoCommand); no widgets, so it is tested without a window.
"""
