"""The lab's one library: data contract, settings, training, the predictor. Knows no HTTP."""
