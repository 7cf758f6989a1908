"""What the model server and the router share below their routes: the HTTP protocol's limits
(`protocol.py`, beneath ASGI), the ASGI layers (`limits.py`: body limit, admission, shedding;
`guard.py`: every /predict answer counted, any exception a clean 500) and the Prometheus
metrics whose names the Kubernetes analysis reads (`metrics.py`)."""
