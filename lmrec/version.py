"""The lmrec version (saved in every model manifest)."""
__version__ = "0.2.0"
