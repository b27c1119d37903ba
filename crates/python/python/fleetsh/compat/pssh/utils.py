"""Logging set-up functions, as parallel-ssh's ``pssh.utils``."""

import logging

__all__ = ["enable_debug_logger", "enable_host_logger", "enable_logger", "host_logger",
           "logger"]

host_logger = logging.getLogger("pssh.host_logger")
"""Logs each line of output read (``[host]\\tline``)."""

logger = logging.getLogger("pssh")
"""The package's logger."""


def enable_logger(_logger: logging.Logger, level: int = logging.INFO) -> None:
    """Logs ``_logger``'s records at ``level`` and above to stderr (once: a logger that
    already has a stream handler is left as it is)."""
    _logger.setLevel(level)
    if any(isinstance(h, logging.StreamHandler) for h in _logger.handlers):
        logger.warning("Logger already has a StreamHandler attached")
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-8s %(name)-15s %(message)s"))
    _logger.addHandler(handler)


def enable_host_logger() -> None:
    """Logs every line of output as it is read (with ``join(consume_output=True)``, every
    line of every host)."""
    enable_logger(host_logger)


def enable_debug_logger() -> None:
    """Logs the package's debug messages to stderr."""
    enable_logger(logger, level=logging.DEBUG)
