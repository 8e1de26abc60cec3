"""Where posteriors come from: fitting models with Pyro, or reading fits done elsewhere (torch + pyro)."""
