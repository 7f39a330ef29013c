"""batchpay: pay many beneficiaries at once from a payroll spreadsheet, through the Vexora
payout gateway, safely (one tradeNo per row, journaled before the first send) and concurrently.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed package's metadata only when asked for
    (importlib.metadata costs a tenth of a second at every start)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("batchpay")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
