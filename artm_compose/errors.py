"""Errors that artm-compose reports to users: each names the offending value."""


class ArtmComposeError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigError(ArtmComposeError, ValueError):
    """A configuration value is invalid; raised before anything is started."""


class DataError(ArtmComposeError):
    """A batch, vocabulary or corpus file cannot be used; the message names the file."""


class BootstrapError(ArtmComposeError):
    """The Redis Cluster did not reach a healthy state; the message says what is missing."""


class RuntimeUnavailable(ArtmComposeError):
    """A runtime's prerequisite (docker, compose plugin, swarm, redis-server) is missing."""


class TrainingError(ArtmComposeError):
    """Training stopped: an executor died, a timeout expired, or the model is inconsistent."""


class ImageBuildError(ArtmComposeError):
    """An image could not be built; the message names the image and the failing step."""


class WaitTimeout(ArtmComposeError, TimeoutError):
    """A bounded wait (artm_compose.waiting) ran out; the message says what was awaited, for how long, and
    the last state seen. The subclasses keep the domain class, so exit codes and handlers stay as they were."""


class BootstrapTimeout(BootstrapError, WaitTimeout):
    """The cluster, or a process or container it needs, did not come up in time."""


class TrainingTimeout(TrainingError, WaitTimeout):
    """A training component did not reach the awaited state in time."""


class RuntimeTimeout(RuntimeUnavailable, WaitTimeout):
    """The runtime (Docker, Swarm) did not finish an operation in time."""


class ImageBuildTimeout(ImageBuildError, WaitTimeout):
    """Another build held the build lock for too long."""
