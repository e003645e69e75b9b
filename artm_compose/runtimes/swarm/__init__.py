"""Docker Swarm: range labels on Swarm nodes, the data plan, and the ``swarm`` CLI group."""
