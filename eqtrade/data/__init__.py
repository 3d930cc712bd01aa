"""Real price data: yfinance download and parquet cache, the bundled dataset, validation, loading."""

from .bundled import BENCHMARK_DATASET, DEFAULT_DATASET, bundled_names, load_bundled, provenance
from .errors import CacheCorruptError, DataError, DatasetNotFoundError, DataValidationError, ImportFormatError
from .yahoo import FetchResult, fetch
from .load import describe, import_prices, list_datasets, load_prices, read_price_file, show
from .store import DataStore, resolve_data_dir
from .validate import Issue, ValidationReport, validate_prices

__all__ = [
    "BENCHMARK_DATASET", "DEFAULT_DATASET", "bundled_names", "load_bundled", "provenance",
    "CacheCorruptError", "DataError", "DatasetNotFoundError", "DataValidationError", "ImportFormatError",
    "FetchResult", "fetch", "describe", "import_prices", "list_datasets", "load_prices", "read_price_file",
    "show", "DataStore", "resolve_data_dir", "Issue", "ValidationReport", "validate_prices",
]
