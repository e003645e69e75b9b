"""Helpers shared by the tests: ports, real corpora, containers, Swarm nodes, the BigARTM reference."""
