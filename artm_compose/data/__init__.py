"""Data in: BigARTM batches (batches.py, artm_batch.proto), the vocabulary (vocab.py), and corpus
preparation from UCI / Vowpal Wabbit (prepare.py) and Debian's package descriptions (debian.py)."""
