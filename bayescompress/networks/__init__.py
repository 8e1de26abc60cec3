"""The network wing: a Bayesian MLP's model spec, the PyTorch module it describes, its tabular data
and its metrics, shared by fit, evaluate, export and load (torch lives in ``mlp`` and ``metrics``).
"""
