"""Fixes: text edits from rules' replacements, applied in non-overlapping passes; `confirm/` runs both versions
under TensorFlow."""
