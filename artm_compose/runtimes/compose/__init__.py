"""The Docker Compose runtime and the file only it reads: ``compose.yml`` (:mod:`.compose_file`, from
``templates/``). The registry imports :mod:`.runtime` for ``RUNTIME``."""
