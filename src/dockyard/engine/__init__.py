"""The only door to the outside world: Docker, compose, subprocesses and the network."""
