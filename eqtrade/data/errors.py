"""Errors of the data layer; every message names the offending ticker, date, file or value."""


class DataError(Exception):
    """Base class of eqtrade data errors."""


class DatasetNotFoundError(DataError, KeyError):
    """A dataset or ticker name that is neither bundled, cached nor imported."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CacheCorruptError(DataError):
    """A cached file is missing, truncated, altered or has the wrong schema."""


class DataValidationError(DataError, ValueError):
    """Prices that fail a hard validation check (NaN inside the range, non-positive, duplicate dates)."""


class ImportFormatError(DataError, ValueError):
    """A user's price file whose layout cannot be understood."""
