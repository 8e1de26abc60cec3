"""Task metrics for unpacked models: how much a compressed model still does its job (torch lives here)."""
