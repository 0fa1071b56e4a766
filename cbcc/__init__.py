"""The ``cbcc`` command tree: one module per command group; imports every package, imported by none."""
