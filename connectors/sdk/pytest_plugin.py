"""The pytest plugin of the Relais connector SDK (its ``pytest11`` entry point).

It only adds the kit's options and a header line, so that it loads wherever the SDK is installed,
even without the kit's extra (``relais-connector-sdk[kit]``: pytest and Hypothesis). The checks
themselves are in :mod:`connectors.sdk.conformance`, which a vendor's test module imports.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pytest

DISTRIBUTION = "relais-connector-sdk"
DEFAULT_EXAMPLES = 8


def sdk_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "not installed"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("relais-connectors", "Relais connector conformance kit")
    group.addoption("--conformance-examples", type=int, default=None,
                    help=f"generated item sets per round-trip property (default {DEFAULT_EXAMPLES})")


def pytest_report_header(config: pytest.Config) -> str:
    return f"relais connector kit: {DISTRIBUTION} {sdk_version()}"
