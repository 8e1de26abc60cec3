"""Fitting Bayesian models whose posteriors bayescompress compresses (torch and Pyro live here).

``corpus`` turns text into co-occurrence counts, ``skipgram`` fits the Bayesian skip-gram model
to them, ``distributed`` lets ``torchrun`` split a fit over processes.
"""
