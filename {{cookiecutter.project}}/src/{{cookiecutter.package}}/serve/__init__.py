"""Model serving and local progressive delivery: server, router, shadow, controller."""
