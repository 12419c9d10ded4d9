"""Shared fixtures: where the real data and the shipped model are."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


# CI sets EDGEDIGITS_REQUIRE_DATA=1 (.ci/run): a missing data folder then fails the tests that need
# it instead of skipping them, so a run cannot pass green with most of the suite skipped.
REQUIRE_DATA = os.environ.get("EDGEDIGITS_REQUIRE_DATA", "") not in ("", "0")


def _dir_or_skip(path: Path, what: str) -> Path:
    if not path.is_dir():
        if REQUIRE_DATA:
            pytest.fail(f"{what} not found at {path} (EDGEDIGITS_REQUIRE_DATA is set)", pytrace=False)
        pytest.skip(f"{what} not found at {path}")
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The canonical MNIST files: $EDGEDIGITS_DATA, else ../shared/data/mnist."""
    return _dir_or_skip(Path(os.environ.get("EDGEDIGITS_DATA", SHARED / "mnist")), "MNIST data")


@pytest.fixture(scope="session")
def paper_dir() -> Path:
    """The 15 real photos of handwritten digits on paper (read-only)."""
    return _dir_or_skip(SHARED / "paper", "paper photos")


@pytest.fixture(scope="session")
def hard_dir() -> Path:
    """The 15 real photos of handwritten digits among print, grids, letters and signs (read-only)."""
    return _dir_or_skip(SHARED / "paper-hard", "paper-hard photos")


@pytest.fixture(scope="session")
def shipped_dir() -> Path:
    """The shipped default model folder (weights, config, exports)."""
    from edgedigits.models import shipped

    return shipped()


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """(train_images, train_labels, test_images, test_labels) as uint8 numpy arrays."""
    from edgedigits.train.data import load_mnist

    return load_mnist(mnist_dir, allow_download=False)


# The web app's browser fixtures (tests/web_fixtures.py), defined here once for the whole session:
# one build of the site, one server, one Playwright and one chromium for every test_web*.py module
# (a session fixture imported into two test modules would be two, and Playwright's sync API refuses
# a second one beside the first).
from web_fixtures import app_page, browser, camera_video, web_page, web_server, web_site  # noqa: E402,F401
