"""The fixtures a cnnbench benchmark uses: the warm reference groups, the rendezvous of sets across
nodes, and each configuration's worker group paired with its reference, timed by pytest-benchmark.
Light at import: the plugin loads them in every pytest run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cnnbench.plugin.adapter import round_seconds, timer
from cnnbench.plugin.keys import SESSION

if TYPE_CHECKING:
    from cnnbench.ranks.nodes import Nodes
    from cnnbench.ranks.pairing import Pair, References
    from cnnbench.settings.cases import Case


@pytest.fixture(scope="session")
def cnnbench_references() -> Iterator[References]:
    """The reference groups, kept warm for every configuration that pairs with them."""
    from cnnbench.ranks.pairing import References

    references = References()
    try:
        yield references
    finally:
        references.close()


@pytest.fixture(scope="session")
def cnnbench_nodes(request: pytest.FixtureRequest) -> Iterator[Nodes | None]:
    """Where the nodes of a multi-node set meet (--cnnbench-rdzv): None where every set is on this node."""
    from cnnbench.ranks.nodes import Nodes

    session = request.config.stash[SESSION]
    if session.settings.nodes == 1:
        yield None
        return
    nodes = Nodes(session.settings.rdzv, session.settings.timeout)
    try:
        yield nodes
    finally:
        session.environment["nodes"] = nodes.environments()
        nodes.close()


@pytest.fixture
def cnnbench_group(
    cnnbench_case: Case,
    cnnbench_references: References,
    cnnbench_nodes: Nodes | None,
    benchmark,
    request: pytest.FixtureRequest,
) -> Iterator[Pair]:
    """The case's worker group, paired with its reference's and its local steps', started and
    warmed up before the benchmark; the case's own group is closed after it. Records the result,
    with the all-reduce timings and whole epochs (``--cnnbench-epochs``) timed on the group after
    its rounds."""
    from cnnbench.ranks.pairing import Pair

    benchmark.group = cnnbench_case.model_config
    try:
        pair = Pair.start(cnnbench_case, cnnbench_references, timer(benchmark), cnnbench_nodes)
    except BaseException:
        benchmark.skipped = True  # it never ran: no "fixture was not used" warning on top of the error
        raise
    try:
        yield pair
        rounds = round_seconds(benchmark)
        if rounds is not None and len(rounds) == cnnbench_case.rounds:
            all_reduce = pair.all_reduce()
            session = request.config.stash[SESSION]
            pair.time_epochs(session.settings.epochs)
            info = session.record(benchmark.fullname, cnnbench_case, rounds, pair, all_reduce)
            benchmark.extra_info.update(info)
    finally:
        pair.close()
