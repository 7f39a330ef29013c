"""batchpay: pay many beneficiaries at once from a payroll spreadsheet, through the Vexora
payout gateway, safely (one tradeNo per row, journaled before the first send) and concurrently.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("batchpay")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
