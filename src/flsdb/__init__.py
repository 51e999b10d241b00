"""flsdb: the open analytics warehouse for the FLS-DB audit."""

__version__ = "0.1.0"
