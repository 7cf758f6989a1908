"""After release: drift against the champion's reference, realised performance, and the notice to retrain."""
