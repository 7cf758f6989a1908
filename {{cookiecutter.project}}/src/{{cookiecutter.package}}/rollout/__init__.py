"""Progressive delivery: one rollout spec and policy, the local engine (router, controller) and the Kubernetes renderer."""
