"""Models out: the boosters, the ensemble pyfunc, hyperparameters and their tuning."""
