"""The pipeline stages, validate -> train -> evaluate -> gate -> promote, one module each (`dvc.yaml`)."""
