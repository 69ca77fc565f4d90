"""The bottom layer: plain types, errors, paths and small I/O helpers. Imports nothing of medgate
outside this package, so every other layer can use it."""
