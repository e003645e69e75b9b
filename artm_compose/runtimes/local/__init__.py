"""The local runtime (processes on this machine) and the files only it reads: ``redis.conf`` per node and
``addresses.txt``, from ``templates/``. The registry imports :mod:`.runtime` for ``RUNTIME``."""
