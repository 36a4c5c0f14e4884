"""Data in: reading the user's source (day folders, files, globs), validating it, building features, sample data."""
