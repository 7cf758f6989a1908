"""Test and demo helpers shipped with the package, left out of the server image (.dockerignore)."""
