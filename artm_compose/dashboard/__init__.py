"""Seeing the training: the live dashboard (``artm-compose dashboard``), Prometheus metrics, plots and
terminal displays, all drawn from one snapshot of a cluster (:mod:`artm_compose.dashboard.snapshot`).
"""
