"""The version of bayescompress, in a module of its own so that no stage imports the package for it."""

__version__ = "0.1.0"
