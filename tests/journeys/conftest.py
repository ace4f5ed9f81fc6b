"""The journeys' fixtures: one browser per variant (a wide screen in Russian, a 390 px phone,
English), and ``person()`` to open a new person's browser context, whose faults fail the
test at its end. The portal is the session's ``demo_portal`` (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from journey_people import VARIANTS, Person, Variant

from kabinet.testing import chromium


@pytest.fixture(scope="module", params=VARIANTS, ids=[v.name for v in VARIANTS])
def variant(request: pytest.FixtureRequest) -> Variant:
    """Module-scoped, so pytest runs every journey of one variant before the next: the
    manager accepts the request the visitor of the same variant sent."""
    value: Variant = request.param
    return value


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def person(browser: Any, demo_portal: Any, variant: Variant) -> Iterator[Callable[[], Person]]:
    """``person()`` opens a new person's browser; each is checked when the test ends."""
    made: list[Person] = []

    def make() -> Person:
        made.append(Person(browser, demo_portal.url, variant))
        return made[-1]

    yield make
    faults = []
    for one in made:
        one.context.close()
        faults += one.faults
    assert faults == [], "\n".join(faults)
