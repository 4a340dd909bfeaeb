"""Exceptions and warnings of the package (one place, as in scikit-learn's ``exceptions``)."""


class TwolayerError(Exception):
    """Base class of the package's errors."""


class ParameterError(TwolayerError, ValueError):
    """A parameter is out of its domain; the message names it and the value received."""


class UnknownActivationError(ParameterError, KeyError):
    """An activation name that is not registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(ParameterError):
    """An activation module or entry-point plugin that cannot be loaded; the message names it."""


class ConfigError(ParameterError):
    """An experiment file that cannot be read or validated; the message names the field."""


class ResourceError(ParameterError):
    """The computation asked for would not fit in this machine's memory (checked up front)."""


class ModelAssumptionError(ParameterError):
    """The requested theory does not apply to these activations (e.g. no uniform spike)."""


class StoreError(TwolayerError, OSError):
    """A file of the point store or a result cannot be written or read (disk full, read-only
    folder, another run writing the same output); the message says which and why."""


class ConvergenceWarning(UserWarning):
    """A fixed point or an integration did not reach its tolerance; the result says where."""


class DivergenceWarning(RuntimeWarning):
    """A run or an integration blew up (NaN/inf or beyond a bound); the result says when."""


class StoreWarning(UserWarning):
    """Points of the store that failed their checks (modified, truncated, copied over): they
    are computed again."""
