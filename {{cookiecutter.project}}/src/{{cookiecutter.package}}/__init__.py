"""The project's package: pipeline stages, model server and delivery."""
