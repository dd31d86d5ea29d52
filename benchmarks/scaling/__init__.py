"""The scaling run: replicas behind the balancer, workers in one container, the balancer's
cost, and what a CPU limit does to latency, each app in Docker containers on one core."""
